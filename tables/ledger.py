"""The assignment ledger: latest state and terms per assignment scope."""

from __future__ import annotations

import faust

from contracts.lifecycle import LedgerEntry
from tables.typed import TypedTable, declare_table

NAME = "ledger"


def declare(app: faust.App, partitions: int, store: str) -> TypedTable[LedgerEntry]:
    """Declare the ledger, written only by the intake stage on `assignments`.

    Faust writes a table's changelog to the partition of the event being
    processed, so every entry of a scope lives with its assignment events.
    """
    return declare_table(app, NAME, LedgerEntry, partitions, store=store)
