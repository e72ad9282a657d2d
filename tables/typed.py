"""A typed view over a Faust table of JSON-encoded pydantic records.

A write may wait for the outputs of its event. Inside an agent those outputs
are attached to the event's offset and reach the broker only when the offset
is committed, while Faust would send a table write to the changelog at once:
after a crash the table would then hold a state whose outputs were never
published, and the replayed event, seeing that state, would not send them
again. So the new value is visible to reads at once, but its changelog
record goes out only once the outputs it follows are acknowledged, in the
order the writes were made on their partition. Faust's commit publishes the
attachments of an offset and waits for their acks before it flushes the
producer and commits, so these records are on their way before the offset
counts as done.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import faust
from faust.streams import current_event

from contracts.models import Record

R = TypeVar("R", bound=Record)

# Keys and values stay bytes on the wire and in memory; records are JSON.
RAW_SCHEMA: faust.Schema = faust.Schema(
    key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)


@dataclass
class _Write:
    """A changelog record held back until the outputs it follows are acked."""

    partition: int
    key: bytes
    value: bytes
    outputs: tuple[asyncio.Future[Any], ...]

    def ready(self) -> bool:
        # A failed output holds the write back for good: Faust then fails the
        # commit, and the event is processed again.
        return all(
            o.done() and not o.cancelled() and o.exception() is None
            for o in self.outputs
        )


class TypedTable(Generic[R]):
    """Reads and writes records of one model in a table of raw bytes."""

    def __init__(self, table: Any, model: type[R]) -> None:
        self._table = table
        self._model = model
        self._held: defaultdict[Any, deque[_Write]] = defaultdict(deque)

    def get(self, key: str) -> R | None:
        raw = self._table.get(key.encode())
        if raw is None:
            return None
        return self._model.model_validate_json(raw)

    def put(
        self, key: str, record: R, *, after: Iterable[asyncio.Future[Any]] = ()
    ) -> None:
        """Store `record`; call only while iterating the stream that owns `key`.

        The changelog record waits for `after`, and for every write made
        before this one on the same partition.
        """
        raw_key, value = key.encode(), record.model_dump_json().encode()
        event = current_event()
        if event is None:
            self._table[raw_key] = value
            return
        message = event.message
        self._table.data[raw_key] = value
        held = self._held[message.tp]
        held.append(_Write(message.partition, raw_key, value, tuple(after)))
        for output in held[-1].outputs:
            output.add_done_callback(partial(self._release, held))
        self._release(held)

    def _release(self, held: deque[_Write], *_: object) -> None:
        while held and held[0].ready():
            write = held.popleft()
            self._table.send_changelog(write.partition, write.key, write.value)

    def __len__(self) -> int:
        return len(self._table)


def declare_table(
    app: faust.App, name: str, model: type[R], partitions: int
) -> TypedTable[R]:
    """Declare a changelog-backed table of raw bytes holding `model` records."""
    table = app.Table(
        name,
        schema=RAW_SCHEMA,
        # The key and value types also pick the changelog's serializers; left
        # out, recovery would read the raw bytes back as JSON.
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
    )
    return TypedTable(table, model)
