"""Accepted assignments become issued contracts, end to end on the real stack."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from contracts.models import AuditEvent, AuditType, Contract, DeadLetter, Notification
from streams.codec import to_json
from streams.settings import Settings
from streams.topics import Catalog
from tests.factories import event
from tests.integration.harness import latest_by_key, produce, read_all, workers


def as_json(**kwargs: Any) -> dict[str, Any]:
    return to_json(event(**kwargs))


def test_an_accepted_assignment_gets_one_stored_contract_showing_its_terms(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    accepted = as_json(event_type="AssignmentAccepted")
    produce(settings, catalog.assignments, [accepted, accepted, accepted])

    with workers(settings, tmp_path):
        contracts = read_all(settings, catalog.contracts, until=lambda r: len(r) >= 1)
        audits = read_all(settings, catalog.audit, until=lambda r: len(r) >= 2)

    [contract] = {r.value.contract_id: r.value for r in contracts}.values()
    assert isinstance(contract, Contract)
    pdf = Path(contract.document.uri.removeprefix("file://")).read_bytes()
    assert hashlib.sha256(pdf).hexdigest() == contract.document.sha256
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for shown in ("Org A SAS", "Studio Col-1", "Backend developer", "450.00", "EUR"):
        assert shown in text
    assert "09/03/2026" in text and "26/06/2026" in text

    types = sorted(a.value.type for a in audits if isinstance(a.value, AuditEvent))
    assert types == [AuditType.GENERATED, AuditType.GENERATION_ATTEMPT]
    assert {a.value.trace_id for a in audits} == {accepted["trace_id"]}


def test_proposals_frontend_acceptances_and_bad_records_issue_nothing(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    records: list[dict[str, Any] | bytes] = [
        as_json(event_type="AssignmentProposed", assignment_id="asg-p"),
        as_json(
            event_type="AssignmentAccepted", assignment_id="asg-f", source="frontend"
        ),
        b"\x00\x01 not a record",
        {
            **as_json(assignment_id="asg-float"),
            "rate": {"amount": 450.0, "currency": "EUR", "unit": "DAY"},
        },
        {**as_json(assignment_id="asg-naive"), "occurred_at": "2026-03-02T09:30:00"},
        as_json(assignment_id="asg-late", end_date="2026-01-01"),
        as_json(assignment_id="asg-ok"),
    ]
    produce(settings, catalog.assignments, records, key=_key)

    with workers(settings, tmp_path):
        contracts = read_all(settings, catalog.contracts, until=lambda r: len(r) >= 1)
        letters = read_all(settings, catalog.dlq, until=lambda r: len(r) >= 4)
        notes = read_all(settings, catalog.notifications, until=lambda r: len(r) >= 1)

    assert {r.value.assignment_ids for r in contracts} == {("asg-ok",)}
    reasons = sorted(
        (r.key, r.value.reason_code) for r in letters if isinstance(r.value, DeadLetter)
    )
    assert reasons == [
        ("asg-float", "SCHEMA"),
        ("asg-late", "VALIDATION"),
        ("asg-naive", "SCHEMA"),
        ("raw", "DECODE"),
    ]
    raw_letter = next(r.value for r in letters if r.key == "raw")
    assert raw_letter.raw == b"\x00\x01 not a record"
    assert raw_letter.raw_sha256 == hashlib.sha256(raw_letter.raw).hexdigest()
    [note] = [r.value for r in notes if isinstance(r.value, Notification)]
    assert note.code == "CONTRACT_REQUEST_REFUSED" and note.assignment_id == "asg-f"


def test_two_tenants_reusing_an_assignment_id_get_a_contract_each(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    produce(
        settings,
        catalog.assignments,
        [as_json(org_id="org-a"), as_json(org_id="org-b")],
    )

    with workers(settings, tmp_path):
        contracts = read_all(settings, catalog.contracts, until=lambda r: len(r) >= 2)

    by_id = latest_by_key(contracts)
    assert sorted(c.org_id for c in by_id.values()) == ["org-a", "org-b"]


def _key(record: dict[str, Any] | bytes) -> str:
    if isinstance(record, bytes):
        return "raw"
    return str(record["assignment_id"])
