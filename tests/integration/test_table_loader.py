"""Loading changelog partitions into RocksDB in bulk, from the embedded broker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import uuid4

import pytest
import rocksdict
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from faust.types import TP

from contracts.lifecycle import LedgerEntry
from streams.admin import client_config
from streams.app import create_app
from streams.devstack import EmbeddedBroker
from tables import loader
from tables.rocksdb import Store
from tables.typed import declare_table
from tests.integration.conftest import SettingsFactory


def make_topic(bootstrap: str, partitions: int) -> str:
    """Create a compacted topic of its own and return its name."""
    name = f"loader-{uuid4().hex[:8]}-changelog"
    topic = NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=1,
        config={"cleanup.policy": "compact"},
    )
    admin = AdminClient(client_config(bootstrap))
    admin.create_topics([topic])[name].result(30)
    return name


def produce(
    bootstrap: str, topic: str, records: list[tuple[int, bytes, bytes | None]]
) -> None:
    producer = Producer({**client_config(bootstrap), "acks": "all"})
    for partition, key, value in records:
        producer.produce(topic, value, key, partition=partition)
    assert producer.flush(30) == 0


def open_db(path: Path) -> rocksdict.Rdict:
    return rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))


def raw_batch() -> rocksdict.WriteBatch:
    return rocksdict.WriteBatch(raw_mode=True)


def config(bootstrap: str) -> dict[str, object]:
    return {**client_config(bootstrap), "group.id": "loader-test"}


def test_each_partition_holds_the_last_value_of_each_key(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    topic = make_topic(broker.bootstrap, 3)
    produce(
        broker.bootstrap,
        topic,
        [
            (0, b"a", b"1"),
            (0, b"b", b"1"),
            (0, b"a", b"2"),
            (1, b"c", b"1"),
            (1, b"c", None),
            (1, b"d", b"1"),
        ],
    )
    dbs = {n: open_db(tmp_path / f"p{n}.db") for n in range(3)}

    reached = loader.load(
        config(broker.bootstrap),
        [loader.Partition(topic, n, db) for n, db in dbs.items()],
        raw_batch,
    )

    assert reached == {(topic, 0): 2, (topic, 1): 2}
    assert dict(dbs[0].items()) == {b"a": b"2", b"b": b"1"}
    assert dict(dbs[1].items()) == {b"d": b"1"}
    assert dict(dbs[2].items()) == {}


def test_a_load_larger_than_a_batch_applies_every_record(
    broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader, "BATCH_RECORDS", 7)
    topic = make_topic(broker.bootstrap, 1)
    records = [(0, f"k{n % 40}".encode(), f"v{n}".encode()) for n in range(100)]
    produce(broker.bootstrap, topic, records)
    db = open_db(tmp_path / "p0.db")

    reached = loader.load(
        config(broker.bootstrap), [loader.Partition(topic, 0, db)], raw_batch
    )

    assert reached == {(topic, 0): 99}
    latest = {key: value for _, key, value in records}
    assert dict(db.items()) == latest
    assert len(latest) == 40


def test_an_unreachable_broker_is_a_load_error(tmp_path: Path) -> None:
    db = open_db(tmp_path / "p0.db")

    with pytest.raises(loader.LoadError):
        loader.load(
            {"bootstrap.servers": "127.0.0.1:9", "group.id": "loader-test"},
            [loader.Partition("absent-changelog", 0, db)],
            raw_batch,
            stall_timeout=2.0,
        )


def test_a_store_loads_a_partition_once_and_recovery_starts_past_it(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    settings = settings_factory(data_dir=tmp_path / "data")
    app = create_app(settings)
    app.finalize()
    table = declare_table(app, "registry", LedgerEntry, 2, store="rocksdb")._table
    changelog = table.changelog_topic.get_topic_name()
    admin = AdminClient(client_config(settings.broker))
    admin.create_topics([NewTopic(changelog, num_partitions=2)])[changelog].result(30)
    produce(settings.broker, changelog, [(1, b"k1", b"a"), (1, b"k2", b"b")])
    store = table.data
    assert isinstance(store, Store)
    given = {TP(changelog, 0), TP(changelog, 1)}

    asyncio.run(store.assign_partitions(table, given, 1))
    produce(settings.broker, changelog, [(1, b"k1", b"c")])
    asyncio.run(store.assign_partitions(table, given, 2))

    assert store.persisted_offset(TP(changelog, 1)) == 1
    assert store.persisted_offset(TP(changelog, 0)) == -1
    assert dict(store._db_for_partition(1).items()) == {b"k1": b"a", b"k2": b"b"}


def test_a_client_refusing_its_configuration_is_a_load_error(tmp_path: Path) -> None:
    db = open_db(tmp_path / "p0.db")

    with pytest.raises(loader.LoadError, match="cannot read the changelogs"):
        loader.load(
            {"bootstrap.servers": "127.0.0.1:9", "group.id": "x", "no.such": 1},
            [loader.Partition("some-changelog", 0, db)],
            raw_batch,
        )
