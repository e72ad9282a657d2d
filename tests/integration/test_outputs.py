"""The output producer against the embedded broker: acks, order, keys, refusals."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streams.admin import client_config
from streams.devstack import EmbeddedBroker
from streams.outputs import OutputRefusedError, Outputs, outputs_config
from tests.integration.conftest import SettingsFactory

PARTITIONS = 4


def make_topic(bootstrap: str) -> str:
    name = f"outputs-{uuid4().hex[:8]}"
    admin = AdminClient(client_config(bootstrap))
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(30)
    return name


def read_all(bootstrap: str, topic: str, count: int) -> list[tuple[int, bytes, bytes]]:
    """Read `count` records of `topic` as (partition, key, value), in log order."""
    consumer = Consumer({**client_config(bootstrap), "group.id": "outputs-test"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    found: list[tuple[int, bytes, bytes]] = []
    try:
        for _ in range(200):
            for message in consumer.consume(count, timeout=0.1):
                assert message.error() is None
                found.append((message.partition(), message.key(), message.value()))
            if len(found) >= count:
                break
    finally:
        consumer.close()
    return found


def java_partition(key: bytes) -> int:
    """Where the Java client, and aiokafka, put a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def test_acked_records_are_on_their_key_partition_in_send_order(
    settings_factory: SettingsFactory, broker: EmbeddedBroker
) -> None:
    topic = make_topic(broker.bootstrap)
    outputs = Outputs(outputs_config(settings_factory()))
    sent = [(f"key-{i % 7}".encode(), f"value-{i}".encode()) for i in range(300)]

    async def send_all() -> list[asyncio.Future[None]]:
        futures = [
            await outputs.send(topic, key, value, [("trace", b"t")])
            for key, value in sent
        ]
        await asyncio.wait_for(asyncio.gather(*futures), 30)
        await outputs.close()
        return futures

    futures = asyncio.run(send_all())

    assert all(f.done() and f.exception() is None for f in futures)
    found = read_all(broker.bootstrap, topic, len(sent))
    assert sorted(found, key=lambda r: r[2]) == sorted(
        ((java_partition(k), k, v) for k, v in sent), key=lambda r: r[2]
    )
    for key in {k for k, _ in sent}:
        # The partition's log holds one key's records in the order sent.
        assert [v for _, k, v in found if k == key] == [v for k, v in sent if k == key]


def test_an_explicit_partition_is_kept(
    settings_factory: SettingsFactory, broker: EmbeddedBroker
) -> None:
    topic = make_topic(broker.bootstrap)
    outputs = Outputs(outputs_config(settings_factory()))

    async def send() -> None:
        futures = [
            await outputs.send(topic, b"tick", str(p).encode(), None, p)
            for p in range(PARTITIONS)
        ]
        await asyncio.wait_for(asyncio.gather(*futures), 30)
        await outputs.close()

    asyncio.run(send())

    found = read_all(broker.bootstrap, topic, PARTITIONS)
    assert sorted((p, v) for p, _, v in found) == [
        (p, str(p).encode()) for p in range(PARTITIONS)
    ]


def test_a_record_librdkafka_refuses_fails_its_future(
    settings_factory: SettingsFactory, broker: EmbeddedBroker
) -> None:
    topic = make_topic(broker.bootstrap)
    config = outputs_config(settings_factory())
    outputs = Outputs({**config, "message.max.bytes": 2000})

    async def send() -> asyncio.Future[None]:
        refused = await outputs.send(topic, b"k", b"x" * 10_000)
        await outputs.close()
        return refused

    refused = asyncio.run(send())

    assert isinstance(refused.exception(), OutputRefusedError)
    assert topic in str(refused.exception())


def test_a_record_the_broker_never_acks_fails_its_future() -> None:
    # Nothing listens on port 1; librdkafka gives up after message.timeout.ms.
    config = {
        **client_config("127.0.0.1:1"),
        "message.timeout.ms": 500,
        "enable.idempotence": True,
        "acks": "all",
    }
    outputs = Outputs(config)

    async def send() -> BaseException | None:
        future = await outputs.send("nowhere", b"k", b"v")
        try:
            await asyncio.wait_for(future, 10)
        except OutputRefusedError as error:
            return error
        finally:
            await outputs.close(timeout=0)
        return None

    error = asyncio.run(send())

    assert isinstance(error, OutputRefusedError)


def test_close_waits_for_queued_records(
    settings_factory: SettingsFactory, broker: EmbeddedBroker
) -> None:
    topic = make_topic(broker.bootstrap)
    outputs = Outputs({**outputs_config(settings_factory()), "linger.ms": 500})

    async def send() -> list[asyncio.Future[None]]:
        futures = [await outputs.send(topic, b"k", b"%d" % i) for i in range(50)]
        # Lingering: nothing has left yet when close is called.
        assert not any(f.done() for f in futures)
        await outputs.close()
        await asyncio.sleep(0)
        return futures

    futures = asyncio.run(send())

    assert outputs.pending() == 0
    assert all(f.done() and f.exception() is None for f in futures)
    assert len(read_all(broker.bootstrap, topic, 50)) == 50
