"""Load changelog partitions into RocksDB in bulk, before Faust's recovery.

Faust recovers a table one changelog record at a time through its stream
machinery, about 7,000 records a second here, whatever their size. A
librdkafka consumer reading the same partitions into RocksDB write batches
does the same work many times faster. The loader reads each partition from
its first record to its end and says which offset it reached; Faust then
reads only what came after.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from contracts.errors import TransientError

log = logging.getLogger(__name__)

# Records applied per RocksDB write batch: enough that the per-batch cost
# vanishes, few enough that a batch of registry entries (1.7 KB each) stays
# near 2 MiB. One batch is open per partition.
BATCH_RECORDS = 1_000
# Records asked of librdkafka per call. A call returns when it has them all
# or when its wait is over, so the wait is short: the end of a small
# changelog is seen within a tenth of a second.
CONSUME_RECORDS = 1_000
POLL_SECONDS = 0.1
# Offset 0 rather than librdkafka's "beginning", which costs a request that
# the embedded broker answers in half a second. Where a compacted log no
# longer starts at 0, the offset is out of range and the reset below applies.
FIRST_OFFSET = 0


class LoadError(TransientError):
    """A changelog partition could not be read to its end."""


class Batch(Protocol):
    """A RocksDB write batch (rocksdict's, in raw mode)."""

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def len(self) -> int: ...


class Database(Protocol):
    """Where a partition's keys are written."""

    def write(self, batch: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class Partition:
    """A changelog partition and the database its keys go to."""

    topic: str
    partition: int
    database: Database


def load(
    config: Mapping[str, Any],
    partitions: Iterable[Partition],
    new_batch: Callable[[], Batch],
    stall_timeout: float = 30.0,
) -> dict[tuple[str, int], int]:
    """Apply every record of the partitions; return the last offset of each.

    A partition with no record is left out of the result. A record without a
    value deletes its key, as a tombstone does on a compacted topic. The load
    fails when the broker gives nothing for `stall_timeout` seconds.
    """
    targets = {(p.topic, p.partition): p.database for p in partitions}
    try:
        consumer = Consumer(_settings(config))
        try:
            return _Load(consumer, targets, new_batch).run(stall_timeout)
        finally:
            consumer.close()
    except KafkaException as exc:
        raise LoadError(f"cannot read the changelogs: {exc}") from exc


def _settings(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **config,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # The end of a partition is where a fetch finds no more records.
        # The offsets the broker lists are not used: the embedded broker
        # gives the last batch's first offset plus one as the end.
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        # An empty partition's end is known from the first fetch's answer,
        # which the broker would otherwise hold back for half a second.
        "fetch.wait.max.ms": 10,
        # What librdkafka fetches ahead stays within 16 MiB, so that the
        # load fits the worker's memory beside the tables' own caches.
        "queued.max.messages.kbytes": 8 * 2**10,
        "fetch.max.bytes": 8 * 2**20,
        "max.partition.fetch.bytes": 2 * 2**20,
    }


class _Load:
    """One pass over the partitions, from their first record to their end."""

    def __init__(
        self,
        consumer: Consumer,
        targets: Mapping[tuple[str, int], Database],
        new_batch: Callable[[], Batch],
    ) -> None:
        self._consumer = consumer
        self._targets = targets
        self._new_batch = new_batch
        self._batches = {tp: new_batch() for tp in targets}
        self._unread = set(targets)
        self.reached: dict[tuple[str, int], int] = {}

    def run(self, stall_timeout: float) -> dict[tuple[str, int], int]:
        self._consumer.assign(
            [TopicPartition(*tp, FIRST_OFFSET) for tp in self._targets]
        )
        progress = time.monotonic()
        while self._unread:
            if time.monotonic() - progress > stall_timeout:
                unread = sorted(self._unread)
                raise LoadError(f"changelogs not read to their end: {unread}")
            messages = self._consumer.consume(CONSUME_RECORDS, POLL_SECONDS)
            if messages:
                progress = time.monotonic()
            for message in messages:
                self._take(message)
        for tp, batch in self._batches.items():
            if batch.len():
                self._targets[tp].write(batch)
        return self.reached

    def _take(self, message: Any) -> None:
        tp = (message.topic(), message.partition())
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise LoadError(f"cannot read a changelog: {error}")
            self._unread.discard(tp)
            return
        batch = self._batches[tp]
        key, value = message.key(), message.value()
        # Contractflow never writes a keyless changelog record; one is skipped.
        if key is not None:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self.reached[tp] = message.offset()
        if batch.len() >= BATCH_RECORDS:
            # A written batch is spent: the next records go to a new one.
            self._targets[tp].write(batch)
            self._batches[tp] = self._new_batch()
