"""The contract registry: what became of each contract key."""

from __future__ import annotations

import faust

from contracts.generation import RegistryEntry
from tables.typed import TypedTable, declare_table

NAME = "registry"


def declare(app: faust.App, partitions: int, store: str) -> TypedTable[RegistryEntry]:
    """Declare the registry, written only by the generate stage on `contract.jobs`.

    Jobs are keyed by contract key, so each key's entry lives in the changelog
    partition of its jobs and a rebalance moves both together.
    """
    return declare_table(app, NAME, RegistryEntry, partitions, store=store)
