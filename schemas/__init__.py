"""Avro schemas of the records, one ``.avsc`` per record, parsed once on first use.

Each file defines its named types itself, so it parses on its own and a
registry sees a complete schema. The record name of a schema is the name of
its model class, under the ``io.contractflow`` namespace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from contracts.aggregation import WindowInput
from contracts.commands import Command
from contracts.lifecycle import BundleLink, LedgerEntry
from contracts.models import (
    AssignmentEvent,
    AuditEvent,
    CollaboratorRecord,
    Contract,
    ContractJob,
    DeadLetter,
    Notification,
    OrganizationRecord,
    PaymentBlock,
    PreviewReply,
    Record,
)
from contracts.timeline import FactEvent

NAMESPACE = "io.contractflow"

_FILES: dict[type[Record], str] = {
    AssignmentEvent: "assignment_event.avsc",
    ContractJob: "contract_job.avsc",
    Contract: "contract.avsc",
    AuditEvent: "audit_event.avsc",
    Notification: "notification.avsc",
    DeadLetter: "dead_letter.avsc",
    OrganizationRecord: "organization.avsc",
    CollaboratorRecord: "collaborator.avsc",
    PaymentBlock: "payment_block.avsc",
    PreviewReply: "preview_reply.avsc",
    LedgerEntry: "ledger_entry.avsc",
    Command: "command.avsc",
    FactEvent: "fact_event.avsc",
    WindowInput: "window_input.avsc",
    BundleLink: "bundle_link.avsc",
}

MODELS: Mapping[str, type[Record]] = MappingProxyType(
    {f"{NAMESPACE}.{model.__name__}": model for model in _FILES}
)
"""Full Avro record name → the model it carries."""


@dataclass(frozen=True)
class ParsedSchema:
    """One record's schema, parsed, with its canonical form and fingerprint."""

    name: str
    model: type[Record]
    source: str
    parsed: Any
    canonical: str
    fingerprint: bytes


def schema_for(model: type[Record]) -> ParsedSchema:
    """Return the parsed schema of a record model."""
    try:
        return _by_model()[model]
    except KeyError:
        raise KeyError(f"no Avro schema for {model.__name__}") from None


def schema_for_fingerprint(value: bytes) -> ParsedSchema | None:
    """Return the schema whose CRC-64-AVRO fingerprint is ``value``, if any."""
    return _by_fingerprint().get(value)


def all_schemas() -> tuple[ParsedSchema, ...]:
    """Return every record schema."""
    return tuple(_by_model().values())


@cache
def _by_model() -> dict[type[Record], ParsedSchema]:
    return {model: _load(model, file) for model, file in _FILES.items()}


@cache
def _by_fingerprint() -> dict[bytes, ParsedSchema]:
    return {schema.fingerprint: schema for schema in _by_model().values()}


def _load(model: type[Record], file: str) -> ParsedSchema:
    source = resources.files(__name__).joinpath(file).read_text(encoding="utf-8")
    parsed = parse_schema(json.loads(source), named_schemas={})
    name = f"{NAMESPACE}.{model.__name__}"
    if not isinstance(parsed, dict) or parsed.get("name") != name:
        raise ValueError(f"schemas/{file} does not define the record {name}")
    canonical = to_parsing_canonical_form(parsed)
    # fastavro already gives the CRC-64-AVRO bytes little-endian, as the
    # single-object header wants them.
    crc = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return ParsedSchema(
        name=name,
        model=model,
        source=source,
        parsed=parsed,
        canonical=canonical,
        fingerprint=crc,
    )
