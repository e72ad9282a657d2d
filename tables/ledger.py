"""The assignment ledger: latest state and terms per assignment scope."""

from __future__ import annotations

import faust

from contracts.lifecycle import LedgerEntry
from tables.typed import RAW_SCHEMA, TypedTable

NAME = "ledger"


def declare(app: faust.App, partitions: int) -> TypedTable[LedgerEntry]:
    """Declare the ledger, written only by the intake stage on `assignments`.

    Faust writes a table's changelog to the partition of the event being
    processed, so every entry of a scope lives with its assignment events.
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
    return TypedTable(table, LedgerEntry)
