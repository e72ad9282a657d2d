"""What a domain decision asks the stages to write, and the builders for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.keys import derived_id
from contracts.models import (
    AuditEvent,
    AuditType,
    Contract,
    ContractJob,
    Notification,
    NotificationCode,
    PaymentBlock,
    Severity,
)


@dataclass(frozen=True)
class Outcome:
    """Records to emit, grouped by the topic they go to."""

    jobs: tuple[ContractJob, ...] = ()
    contracts: tuple[Contract, ...] = ()
    audits: tuple[AuditEvent, ...] = ()
    notifications: tuple[Notification, ...] = ()
    payment_blocks: tuple[PaymentBlock, ...] = ()

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(
            self.jobs + other.jobs,
            self.contracts + other.contracts,
            self.audits + other.audits,
            self.notifications + other.notifications,
            self.payment_blocks + other.payment_blocks,
        )

    def __bool__(self) -> bool:
        return any(
            (
                self.jobs,
                self.contracts,
                self.audits,
                self.notifications,
                self.payment_blocks,
            )
        )


NOTHING = Outcome()


def audit_event(
    type_: AuditType,
    *,
    subject: str,
    cause: str,
    attempt: int,
    outcome: str,
    org_id: str,
    project_id: str,
    assignment_id: str | None,
    now: datetime,
    **fields: Any,
) -> AuditEvent:
    """Build an audit event whose id is fixed by what it is about.

    `subject` is the contract key, or the assignment scope before a key exists;
    a replay of the same cause rewrites the same audit id, while two attempts
    or two causes never share one.
    """
    audit_id = derived_id("audit", type_.value, subject, assignment_id, attempt, cause)
    return AuditEvent(
        audit_id=audit_id,
        type=type_,
        org_id=org_id,
        project_id=project_id,
        assignment_id=assignment_id,
        attempt=attempt,
        outcome=outcome,
        correlation_id=cause,
        occurred_at=now,
        **fields,
    )


def notification(
    code: NotificationCode,
    *,
    subject: str,
    cause: str,
    message: str,
    org_id: str,
    project_id: str,
    now: datetime,
    severity: Severity = Severity.WARNING,
    **fields: Any,
) -> Notification:
    """Build a notification whose id is fixed by its code, subject and cause."""
    return Notification(
        notification_id=derived_id("notification", code.value, subject, cause),
        code=code,
        severity=severity,
        org_id=org_id,
        project_id=project_id,
        message=message,
        occurred_at=now,
        **fields,
    )
