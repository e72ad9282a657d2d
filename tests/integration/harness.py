"""Helpers for tests that run real workers against the embedded stack."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from streams.admin import client_config, producer_config
from streams.codec import Codec
from streams.devrun import worker_process
from streams.devstack import ChildProcess
from streams.settings import Settings
from streams.topics import TopicSpec


@dataclass(frozen=True)
class Read:
    """One record read back from a topic, its value decoded."""

    key: str | None
    partition: int
    offset: int
    value: Any
    headers: dict[str, bytes]


@contextmanager
def workers(
    settings: Settings, tmp: Path, count: int = 1
) -> Iterator[list[ChildProcess]]:
    """Run `count` worker processes, each with its own web port and data dir."""
    from streams.devstack import free_port

    children = []
    for n in range(count):
        own = settings.model_copy(
            update={"web_port": free_port(), "data_dir": tmp / f"worker-{n}"}
        )
        child = worker_process(own, tmp / f"worker-{n}.log", name=f"worker-{n}")
        child.start()
        children.append(child)
    try:
        yield children
    finally:
        for child in children:
            child.stop()


def produce(
    settings: Settings,
    spec: TopicSpec,
    records: Iterable[dict[str, Any] | bytes],
    *,
    key: Callable[[Any], str | None] | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> int:
    """Produce records (JSON objects, or raw bytes) keyed by the topic's key field."""
    producer = Producer(producer_config(settings))
    count = 0
    for record in records:
        if isinstance(record, bytes):
            value, record_key = record, key(record) if key else None
        else:
            value = json.dumps(record).encode()
            record_key = key(record) if key else record[spec.key_field or ""]
        producer.produce(
            spec.name,
            key=record_key.encode() if record_key is not None else None,
            value=value,
            headers=headers,
        )
        count += 1
        if count % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} records not delivered"
    return count


def read_all(
    settings: Settings,
    spec: TopicSpec,
    *,
    until: Callable[[list[Read]], bool] = lambda _: False,
    timeout: float = 60.0,
    idle: float = 3.0,
) -> list[Read]:
    """Read `spec` from the beginning until `until` holds or nothing new comes.

    Stops when `until(records)` is true, or after `idle` seconds without a new
    record once `until` has been given `timeout` seconds to become true.
    """
    codec = Codec(settings.schema_registry_url)
    consumer = Consumer(
        {
            **client_config(settings.broker),
            "group.id": "test-reader",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign(
        [TopicPartition(spec.name, p, 0) for p in range(settings.partitions)]
    )
    records: list[Read] = []
    start = last = time.monotonic()
    try:
        while True:
            message = consumer.poll(0.2)
            now = time.monotonic()
            if message is not None and not message.error():
                records.append(_read(codec, message))
                last = now
                continue
            if until(records):
                return records
            if now - start > timeout and now - last > idle:
                return records
    finally:
        consumer.close()


def latest_by_key(records: Iterable[Read]) -> dict[str | None, Any]:
    """What a compacted topic keeps: the last value of each key."""
    return {r.key: r.value for r in records}


def _read(codec: Codec, message: Any) -> Read:
    key = message.key()
    return Read(
        key=key.decode() if key is not None else None,
        partition=message.partition(),
        offset=message.offset(),
        value=codec.decode_any(message.value()),
        headers=dict(message.headers() or []),
    )
