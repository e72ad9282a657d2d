"""Timelines and contracts read back from the topics, for the API and the CLI."""

from __future__ import annotations

from typing import Any, TypeVar

from contracts.keys import canonical_id
from contracts.models import (
    AssignmentEvent,
    Contract,
    Notification,
    PaymentBlock,
    Record,
)
from contracts.timeline import AssignmentTimeline, FactEvent, Timeline, compose
from streams.codec import Codec, to_json
from streams.readback import READ_TIMEOUT_SECONDS, Predicate, ReadSpec, read_topics
from streams.settings import Settings
from streams.topics import Catalog

T = TypeVar("T", bound=Record)

_COLUMNS = ("STEP", "STATUS", "AT", "REF")


def read_timeline(
    settings: Settings,
    org_id: str,
    project_id: str,
    mission_id: str,
    *,
    codec: Codec | None = None,
    timeout: float = READ_TIMEOUT_SECONDS,
) -> Timeline:
    """Read the topics of a mission's steps and compose its timeline."""
    catalog = Catalog(settings)
    fact_topics = (catalog.executions, catalog.invoices, catalog.payments)
    specs: list[ReadSpec] = [
        (catalog.assignments, AssignmentEvent),
        (catalog.contracts, Contract),
        *((spec, FactEvent) for spec in fact_topics),
        (catalog.payment_blocks, PaymentBlock),
        (catalog.notifications, Notification),
    ]
    in_project = _in_project(org_id, project_id)
    found = read_topics(settings, specs, in_project, codec=codec, timeout=timeout)

    facts = [f for spec in fact_topics for f in _of(found[spec.name], FactEvent)]
    return compose(
        org_id,
        project_id,
        mission_id,
        _of(found[catalog.assignments.name], AssignmentEvent),
        _of(found[catalog.contracts.name], Contract),
        facts,
        _of(found[catalog.payment_blocks.name], PaymentBlock),
        _of(found[catalog.notifications.name], Notification),
    )


def read_contract(
    settings: Settings,
    org_id: str,
    project_id: str,
    contract_id: str,
    *,
    codec: Codec | None = None,
    timeout: float = READ_TIMEOUT_SECONDS,
) -> Contract | None:
    """Return the latest record of a tenant's contract, or None if it has none."""
    spec = Catalog(settings).contracts
    in_project = _in_project(org_id, project_id)
    wanted = canonical_id(contract_id)

    def matches(record: Record) -> bool:
        return (
            isinstance(record, Contract)
            and in_project(record)
            and canonical_id(record.contract_id) == wanted
        )

    found = read_topics(
        settings, [(spec, Contract)], matches, codec=codec, timeout=timeout
    )
    versions = _of(found[spec.name], Contract)
    return versions[-1] if versions else None


def timeline_json(timeline: Timeline) -> dict[str, Any]:
    """Return `timeline` as the JSON body of the timeline endpoint."""
    return to_json(timeline)


def format_timeline(timeline: Timeline) -> str:
    """Return `timeline` as text tables, one per assignment."""
    mission = f"{timeline.org_id}/{timeline.project_id}/{timeline.mission_id}"
    if not timeline.assignments:
        return f"mission {mission}: no assignment found\n"
    parts = [f"mission {mission}\n"]
    parts.extend(_assignment_table(row) for row in timeline.assignments)
    return "\n".join(parts)


def _assignment_table(row: AssignmentTimeline) -> str:
    cells = [_COLUMNS] + [
        (
            step.step.value,
            step.status.value,
            step.at.isoformat() if step.at else "-",
            step.ref or "-",
        )
        for step in row.steps
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    lines = [f"assignment {row.assignment_id}"]
    lines.extend(
        "  " + "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )
    lines.append(_warnings_text(row))
    lines.append(_block_text(row))
    return "\n".join(lines) + "\n"


def _warnings_text(row: AssignmentTimeline) -> str:
    if not row.warnings:
        return "  warnings: none"
    listed = [
        f"    {note.occurred_at.isoformat()}  {note.code.value}  {note.message}"
        for note in row.warnings
    ]
    return "\n".join(["  warnings:", *listed])


def _block_text(row: AssignmentTimeline) -> str:
    block = row.payment_block
    if block is None:
        return "  payment block: none"
    return (
        f"  payment block: since {block.since.isoformat()} on contract "
        f"{block.contract_id}: {block.reason}"
    )


def _in_project(org_id: str, project_id: str) -> Predicate:
    org, project = canonical_id(org_id), canonical_id(project_id)

    def matches(record: Record) -> bool:
        record_org = getattr(record, "org_id", None)
        record_project = getattr(record, "project_id", None)
        if not isinstance(record_org, str) or not isinstance(record_project, str):
            return False
        return (canonical_id(record_org), canonical_id(record_project)) == (
            org,
            project,
        )

    return matches


def _of(records: list[Record], model: type[T]) -> list[T]:
    return [record for record in records if isinstance(record, model)]
