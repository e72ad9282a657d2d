"""The missing-contract detector's rules: when to warn, and what is emitted.

An accepted assignment is expected to have a contract within a grace period.
The deadline is counted from when the acceptance was seen, not from its
`occurred_at`: a backlog replayed days later must not warn for every record
before the generator had a chance to catch up. The records are keyed by the
assignment scope and a fixed cause, so a warning repeated after a crash is the
same record again, never a second warning.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from contracts.lifecycle import ACCEPTED_OR_LATER, LedgerEntry
from contracts.models import AuditType, NotificationCode, Severity
from contracts.outcome import Outcome, audit_event, notification

WARNING_CAUSE = "expected_missing"
RESOLVED_CAUSE = "expected_resolved"


class Check(StrEnum):
    """What a due deadline calls for."""

    WARN = "warn"
    SETTLED = "settled"  # a contract exists, or none is expected any more
    UNKNOWN = "unknown"  # the assignment's state is not readable yet


def deadline(seen_at: datetime, grace: timedelta) -> datetime:
    """When an acceptance seen at `seen_at` without a contract calls for a warning."""
    return seen_at + grace


def check(entry: LedgerEntry | None, has_contract: bool) -> Check:
    """Decide a due deadline, from the assignment's state and its contract."""
    if entry is None:
        return Check.UNKNOWN
    if has_contract or entry.state not in ACCEPTED_OR_LATER:
        return Check.SETTLED
    return Check.WARN


def expected_missing(entry: LedgerEntry, grace: timedelta, now: datetime) -> Outcome:
    """The audit and the warning for an accepted assignment still without contract."""
    message = (
        f"assignment {entry.assignment_id} on mission {entry.mission_id} was "
        f"accepted and has no contract after {_duration(grace)}"
    )
    return _records(
        entry,
        AuditType.EXPECTED_MISSING,
        NotificationCode.EXPECTED_WARNING,
        WARNING_CAUSE,
        message,
        now,
        contract_id=None,
    )


def expected_resolved(entry: LedgerEntry, contract_id: str, now: datetime) -> Outcome:
    """The notice that a warned assignment has its contract now."""
    message = (
        f"assignment {entry.assignment_id} on mission {entry.mission_id} has its "
        f"contract {contract_id}; the missing-contract warning is resolved"
    )
    return _records(
        entry,
        None,
        NotificationCode.EXPECTED_RESOLVED,
        RESOLVED_CAUSE,
        message,
        now,
        contract_id=contract_id,
        severity=Severity.INFO,
    )


def _records(
    entry: LedgerEntry,
    audit_type: AuditType | None,
    code: NotificationCode,
    cause: str,
    message: str,
    now: datetime,
    *,
    contract_id: str | None,
    severity: Severity = Severity.WARNING,
) -> Outcome:
    common: dict[str, Any] = {
        "org_id": entry.org_id,
        "project_id": entry.project_id,
        "mission_id": entry.mission_id,
        "assignment_id": entry.assignment_id,
        "now": now,
    }
    note = notification(
        code,
        subject=entry.scope,
        cause=cause,
        message=message,
        severity=severity,
        **common,
    )
    if audit_type is None:
        return Outcome(notifications=(note,))
    audit = audit_event(
        audit_type,
        subject=entry.scope,
        cause=cause,
        attempt=0,
        outcome="warned",
        contract_id=contract_id,
        payload={"reason": message},
        **common,
    )
    return Outcome(audits=(audit,), notifications=(note,))


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
