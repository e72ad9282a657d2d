"""The detector's rules: when a due deadline warns, and what it emits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts import detector
from contracts.detector import Check
from contracts.lifecycle import LedgerEntry
from contracts.models import AuditType, NotificationCode, Severity
from tests.factories import event
from tests.unit.test_lifecycle import NOW, run

GRACE = timedelta(hours=24)


def entry_after(*event_types: str) -> LedgerEntry:
    entry, _ = run(*(event(t, at=n) for n, t in enumerate(event_types)))
    assert entry is not None
    return entry


def test_the_deadline_is_the_grace_period_after_the_acceptance_was_seen() -> None:
    assert detector.deadline(NOW, GRACE) == NOW + GRACE


def test_an_accepted_assignment_without_contract_is_warned_about() -> None:
    assert detector.check(entry_after("AssignmentAccepted"), False) is Check.WARN


def test_a_contract_settles_the_deadline() -> None:
    assert detector.check(entry_after("AssignmentAccepted"), True) is Check.SETTLED


@pytest.mark.parametrize(
    "events",
    [
        ("AssignmentAccepted", "AssignmentCanceled"),
        ("AssignmentProposed", "AssignmentDeclined"),
        ("AssignmentProposed",),
    ],
)
def test_no_contract_is_expected_of_an_assignment_not_accepted_now(
    events: tuple[str, ...],
) -> None:
    assert detector.check(entry_after(*events), False) is Check.SETTLED


def test_an_assignment_not_seen_yet_is_looked_at_again_later() -> None:
    assert detector.check(None, False) is Check.UNKNOWN


def test_the_warning_is_one_audit_and_one_notification_for_the_mission() -> None:
    entry = entry_after("AssignmentAccepted")

    outcome = detector.expected_missing(entry, GRACE, NOW)

    [audit] = outcome.audits
    [note] = outcome.notifications
    assert audit.type is AuditType.EXPECTED_MISSING
    assert note.code is NotificationCode.EXPECTED_WARNING
    assert note.severity is Severity.WARNING
    for record in (audit, note):
        assert (record.org_id, record.project_id) == (entry.org_id, entry.project_id)
        assert record.mission_id == entry.mission_id
        assert record.assignment_id == entry.assignment_id
    assert "24 h" in note.message


def test_a_repeated_warning_has_the_same_ids_so_it_is_the_same_record() -> None:
    entry = entry_after("AssignmentAccepted")

    first = detector.expected_missing(entry, GRACE, NOW)
    again = detector.expected_missing(entry, GRACE, NOW + timedelta(minutes=3))

    assert first.audits[0].audit_id == again.audits[0].audit_id
    assert first.notifications[0].notification_id == (
        again.notifications[0].notification_id
    )


def test_a_resolution_names_the_contract_and_differs_from_the_warning() -> None:
    entry = entry_after("AssignmentAccepted")

    warning = detector.expected_missing(entry, GRACE, NOW)
    resolved = detector.expected_resolved(entry, "c-1", NOW)

    [note] = resolved.notifications
    assert note.code is NotificationCode.EXPECTED_RESOLVED
    assert note.severity is Severity.INFO
    assert "c-1" in note.message
    assert note.notification_id != warning.notifications[0].notification_id
    assert not resolved.audits
