"""A typed view over a Faust table of JSON-encoded pydantic records."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import faust

from contracts.models import Record

R = TypeVar("R", bound=Record)

# Keys and values stay bytes on the wire and in memory; records are JSON.
RAW_SCHEMA: faust.Schema = faust.Schema(
    key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)


class TypedTable(Generic[R]):
    """Reads and writes records of one model in a table of raw bytes."""

    def __init__(self, table: Any, model: type[R]) -> None:
        self._table = table
        self._model = model

    def get(self, key: str) -> R | None:
        raw = self._table.get(key.encode())
        if raw is None:
            return None
        return self._model.model_validate_json(raw)

    def put(self, key: str, record: R) -> None:
        """Store `record`; call only while iterating the stream that owns `key`."""
        self._table[key.encode()] = record.model_dump_json().encode()

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
