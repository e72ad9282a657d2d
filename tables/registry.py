"""The contract registry: what became of each contract key."""

from __future__ import annotations

import faust

from contracts.generation import RegistryEntry
from tables.typed import RAW_SCHEMA, TypedTable

NAME = "registry"


def declare(app: faust.App, partitions: int) -> TypedTable[RegistryEntry]:
    """Declare the registry, written only by the generate stage on `contract.jobs`.

    Jobs are keyed by contract key, so each key's entry lives in the changelog
    partition of its jobs and a rebalance moves both together.
    """
    table = app.Table(
        NAME,
        schema=RAW_SCHEMA,
        # The key and value types also pick the changelog's serializers; left
        # out, recovery would read the raw bytes back as JSON.
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
    )
    return TypedTable(table, RegistryEntry)
