"""Faust's RocksDB table store, filled from the changelog in bulk.

Faust's store remembers the last changelog offset it wrote and, when a
partition comes back, reads the changelog only past that offset. Here a table
write reaches the local files at once while its changelog record waits for
the outputs it follows (`tables.typed`), so the offset remembered could run
ahead of the changelog, and Faust would then refuse to recover the partition
(ConsistencyError) after a rebalance. This store remembers no offset of its
own writes. When a partition is first given to the worker, the store loads
its changelog in bulk (`tables.loader`) and tells Faust the offset the load
reached; Faust's recovery, one record at a time, reads only what follows.
The worker starts with empty files (`tables.typed.reset_local_tables`), so
what a partition holds is always its changelog.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import rocksdict
from faust.stores import rocksdb
from faust.types import TP, CollectionT

from streams.admin import client_config
from tables import loader

log = logging.getLogger(__name__)

# The store's URL scheme, registered under the `faust.stores` entry points.
SCHEME = "contractflow-rocksdb"


class Store(rocksdb.Store):
    """RocksDB files holding the keys; the changelog alone says what they are."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The offset each partition's bulk load reached in this process.
        self._loaded: dict[TP, int] = {}

    def _open_for_partition(self, partition: int) -> Any:
        database = super()._open_for_partition(partition)
        database.set_write_options(_UNLOGGED)
        return database

    def persisted_offset(self, tp: TP) -> int | None:
        """The offset the bulk load reached: recovery reads past it."""
        return self._loaded.get(tp)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        """Remember nothing; see `persisted_offset`."""

    async def assign_partitions(
        self, table: CollectionT, tps: set[TP], generation_id: int = 0
    ) -> None:
        """Open the partitions' files, and fill those never loaded before."""
        await super().assign_partitions(table, tps, generation_id)
        changelogs = table.changelog_topic.topics
        fresh = sorted(
            tp for tp in tps if tp.topic in changelogs and tp not in self._loaded
        )
        if fresh:
            await self._load(fresh)

    async def _load(self, tps: list[TP]) -> None:
        # A partition is loaded once per process: its files then only ever
        # take changelog records and writes whose records follow, so recovery
        # from the offset reached stays right after any later rebalance.
        partitions = [
            loader.Partition(
                tp.topic, tp.partition, self._db_for_partition(tp.partition)
            )
            for tp in tps
        ]
        started = time.monotonic()
        try:
            reached = await asyncio.to_thread(
                loader.load, self._client_config(), partitions, _raw_batch
            )
        except loader.LoadError as exc:
            # What was loaded is a prefix of each changelog: Faust's recovery
            # from the first record, over it, still ends at the same state.
            log.warning("bulk load failed, recovering record by record: %s", exc)
            return
        for tp in tps:
            self._loaded[tp] = reached.get((tp.topic, tp.partition), -1)
        log.info(
            "changelogs loaded table=%s partitions=%d records=%d seconds=%.1f",
            self.table.name,
            len(tps),
            sum(offset + 1 for offset in reached.values()),
            time.monotonic() - started,
        )

    def _client_config(self) -> dict[str, Any]:
        servers = ",".join(
            f"{url.host}:{url.port or 9092}" for url in self.app.conf.broker
        )
        return {
            **client_config(servers),
            # Required by librdkafka, never joined: partitions are assigned.
            "group.id": f"{self.app.conf.id}-table-loader",
        }


def _unlogged() -> rocksdict.WriteOptions:
    # The files are a cache that the worker removes when it starts; RocksDB's
    # write-ahead log would only let them survive a crash they are wiped
    # after anyway, and writing it took a third of a bulk load's time.
    options = rocksdict.WriteOptions()
    # A property, which rocksdict's type stubs declare as a method.
    options.disable_wal = True  # type: ignore[method-assign,assignment]
    return options


_UNLOGGED = _unlogged()


def _raw_batch() -> rocksdict.WriteBatch:
    return rocksdict.WriteBatch(raw_mode=True)
