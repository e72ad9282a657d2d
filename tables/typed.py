"""A typed view over a Faust table of JSON-encoded pydantic records.

A write may wait for the outputs of its event. Inside an agent those outputs
are sent without waiting for their acks (`streams.emit`), while Faust would
send a table write to the changelog at once: after a crash the table could
then hold a state whose outputs never reached the broker, and the replayed
event, seeing that state, would not send them again. So the new value is
visible to reads at once, but its changelog record goes out only once the
outputs it follows are acknowledged, in the order the writes were made on
their partition. The commit of an offset waits for those outputs too
(`streams.transport`), and for the changelog records of the writes its
events made, which leave through the stages' output producer.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import faust
from faust.streams import current_event
from faust.types import TP

from contracts.models import Record
from streams.outputs import OutputRefusedError, Outputs
from streams.transport import InFlight, acknowledged
from tables.rocksdb import SCHEME

R = TypeVar("R", bound=Record)

# Keys and values stay bytes on the wire and in memory; records are JSON.
RAW_SCHEMA: faust.Schema = faust.Schema(
    key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)


@dataclass
class _Write:
    """A changelog record held back until the outputs it follows are acked."""

    tp: TP
    offset: int
    partition: int
    key: bytes
    value: bytes
    outputs: tuple[asyncio.Future[Any], ...]
    # Resolved as the changelog record is acknowledged or refused; recorded
    # with the event's outputs from the write on (`ChangelogSender.hold`).
    logged: asyncio.Future[None] | None = None

    def ready(self) -> bool:
        # A failed output holds the write back for good: Faust then fails the
        # commit, and the event is processed again.
        return all(acknowledged(output) for output in self.outputs)


class TypedTable(Generic[R]):
    """Reads and writes records of one model in a table of raw bytes.

    Changelog records go out through `sender`; without one, Faust's own
    changelog producer sends them once released, and commits do not wait
    for them.
    """

    def __init__(
        self, table: Any, model: type[R], sender: ChangelogSender | None = None
    ) -> None:
        self._table = table
        self._model = model
        self._held: defaultdict[Any, deque[_Write]] = defaultdict(deque)
        self._sender = sender

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
        write = _Write(
            message.tp, message.offset, message.partition, raw_key, value, tuple(after)
        )
        if self._sender is not None:
            self._sender.hold(write)
        held = self._held[message.tp]
        held.append(write)
        for output in write.outputs:
            output.add_done_callback(partial(self._release, held))
        self._release(held)

    def _release(self, held: deque[_Write], *_: object) -> None:
        while held and held[0].ready():
            write = held.popleft()
            if self._sender is None:
                self._table.send_changelog(write.partition, write.key, write.value)
            else:
                self._sender.send(write)

    def __len__(self) -> int:
        return len(self._table)


# RocksDB per changelog partition, kept small: the memtables and block cache
# bound what a table costs in memory, whatever the number of keys. Three
# memtables of 4 MiB rather than two of 2 MiB: a bulk load of the registry
# then stalls on flushes less and took a third less time (docs/benchmarks.md).
ROCKSDB_OPTIONS: dict[str, int] = {
    "write_buffer_size": 4 * 2**20,
    "max_write_buffer_number": 3,
    "block_cache_size": 4 * 2**20,
}


def declare_table(
    app: faust.App, name: str, model: type[R], partitions: int, store: str = "memory"
) -> TypedTable[R]:
    """Declare a changelog-backed table of raw bytes holding `model` records.

    `store` is "memory" or "rocksdb". Either way the changelog is the truth: a
    worker removes its local table files before it starts (`reset_local_tables`).
    """
    table = app.Table(
        name,
        schema=RAW_SCHEMA,
        # The key and value types also pick the changelog's serializers; left
        # out, recovery would read the raw bytes back as JSON.
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
        # Named so that the URL is not empty: Faust falls back to the app's
        # store for an empty one, and RocksDB names the files after the path.
        store=f"{SCHEME if store == 'rocksdb' else store}:{name}",
        # A copy: Faust's RocksDB store takes keys out of the mapping it gets.
        options=dict(ROCKSDB_OPTIONS) if store == "rocksdb" else None,
    )
    outputs: Outputs | None = getattr(app, "outputs", None)
    in_flight: InFlight | None = getattr(app, "in_flight", None)
    if outputs is None or in_flight is None:
        return TypedTable(table, model)
    topic = table.changelog_topic.get_topic_name()
    return TypedTable(table, model, ChangelogSender(outputs, in_flight, topic))


class ChangelogSender:
    """Sends released changelog records with the stages' output producer.

    The commit of the event that made a write waits for its changelog record
    as it waits for the event's outputs (`streams.transport`). The record is
    recorded against that event's partition and offset when the write is
    made, not when it leaves: by the time the outputs it follows are acked,
    they may have left the in-flight record, and a commit would then find
    nothing to wait for.
    """

    def __init__(self, outputs: Outputs, in_flight: InFlight, topic: str) -> None:
        self._outputs = outputs
        self._in_flight = in_flight
        self._topic = topic

    def hold(self, write: _Write) -> None:
        """From now on, the commit of the write's event waits for its record."""
        write.logged = asyncio.get_running_loop().create_future()
        self._in_flight.add(write.tp, write.offset, [write.logged])

    def send(self, write: _Write) -> None:
        """Send a released write; its `logged` future follows the record."""
        logged = write.logged
        assert logged is not None, "hold() the write first"
        try:
            sent = self._outputs.send_now(
                self._topic, write.key, write.value, partition=write.partition
            )
        except Exception as error:
            # Called back, not awaited: it cannot wait for room in a full
            # queue. The commit then fails, and the event is processed again
            # after a restart.
            logged.set_exception(OutputRefusedError(f"{self._topic}: {error!r}"))
            return
        sent.add_done_callback(partial(_follow, logged))


def _follow(target: asyncio.Future[None], source: asyncio.Future[None]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif (error := source.exception()) is not None:
        target.set_exception(error)
    else:
        target.set_result(None)


def reset_local_tables(app: faust.App) -> None:
    """Remove the table files a previous run left; recovery reads the changelogs.

    A write is visible in the local store at once, while its changelog record
    waits for the outputs it follows. Files left by a crash can therefore hold
    writes whose outputs never reached the broker, and an event replayed
    against them would not send those outputs again. Started empty, a table
    holds only what its changelog holds, as a memory store would.
    """
    shutil.rmtree(app.conf.tabledir, ignore_errors=True)
