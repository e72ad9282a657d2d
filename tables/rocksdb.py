"""Faust's RocksDB table store, rebuilt from the changelog on every assignment.

Faust's store remembers the last changelog offset it wrote and, when a
partition comes back, reads the changelog only past that offset. Here a table
write reaches the local files at once while its changelog record waits for
the outputs it follows (`tables.typed`), so the offset remembered can run
ahead of the changelog, and Faust then refuses to recover the partition
(ConsistencyError) after a rebalance. This store remembers no offset: every
partition it is given is read from the start of its changelog, as the memory
store does, and the files only keep the keys off the heap.
"""

from __future__ import annotations

from faust.stores import rocksdb
from faust.types import TP

# The store's URL scheme, registered under the `faust.stores` entry points.
SCHEME = "contractflow-rocksdb"


class Store(rocksdb.Store):
    """RocksDB files holding the keys; the changelog alone says what they are."""

    def persisted_offset(self, tp: TP) -> int | None:
        """No offset: recovery reads the partition's changelog from its start."""
        return None

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        """Remember nothing; see `persisted_offset`."""
