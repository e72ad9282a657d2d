"""The timeline of a mission, composed at read time from what its topics hold.

A timeline is never stored: `compose` is a pure function of the records read
back, so duplicates and the order of delivery change nothing. Events and facts
are deduplicated by event id and ordered by (occurred_at, event_id). Contracts
and payment blocks are keyed records whose latest version wins, so they are
taken in the order they were written, as a compacted topic keeps them.

Each step is reached at its first event: Assignment at the first event of the
assignment, Acceptance at the first backend acceptance not preceded by a
decline or cancel, Execution at the first execution fact (started, or
completed when no start was reported), Invoice and Payment at the first
invoice and payment. Contract shows the latest contract of the assignment's
amendment chain.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from pydantic import AwareDatetime, field_validator

from contracts.currencies import KNOWN_CURRENCIES
from contracts.keys import canonical_id
from contracts.models import (
    AssignmentEvent,
    Contract,
    ContractStatus,
    EventType,
    Notification,
    PaymentBlock,
    Record,
    Source,
    as_utc,
)


class FactType(StrEnum):
    EXECUTION_STARTED = "ExecutionStarted"
    EXECUTION_COMPLETED = "ExecutionCompleted"
    INVOICE_ISSUED = "InvoiceIssued"
    PAYMENT_MADE = "PaymentMade"


EXECUTION_FACTS = frozenset({FactType.EXECUTION_STARTED, FactType.EXECUTION_COMPLETED})


class Money(Record):
    """An exact amount in an ISO 4217 currency, as invoices and payments state it.

    A fact's amount is a sum of money, not a rate: it has no unit, so it is
    not a `Rate`.
    """

    amount: Decimal
    currency: str

    @field_validator("amount", mode="before")
    @classmethod
    def _exact_amount(cls, value: Any) -> Any:
        # A float has already lost the exact amount the producer meant.
        if isinstance(value, float | bool):
            raise ValueError("amount must be an exact decimal string, not a number")
        return value

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in KNOWN_CURRENCIES:
            raise ValueError(f"{value!r} is not an ISO 4217 currency code")
        return value


class FactEvent(Record):
    """A fact from another system, on `executions`, `invoices` or `payments`."""

    event_id: str
    event_type: FactType
    occurred_at: AwareDatetime
    org_id: str
    project_id: str
    mission_id: str
    assignment_id: str
    amount: Money | None = None

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class StepName(StrEnum):
    ASSIGNMENT = "Assignment"
    ACCEPTANCE = "Acceptance"
    CONTRACT = "Contract"
    EXECUTION = "Execution"
    INVOICE = "Invoice"
    PAYMENT = "Payment"


class StepStatus(StrEnum):
    DONE = "done"
    MISSING = "missing"
    BLOCKED = "blocked"
    VOID = "void"


class Step(Record):
    """One step of an assignment: its status, when, and the record it rests on."""

    step: StepName
    status: StepStatus
    at: AwareDatetime | None = None
    ref: str | None = None


class AssignmentTimeline(Record):
    """The steps of one assignment, with the warnings and block that apply."""

    assignment_id: str
    steps: tuple[Step, ...]
    warnings: tuple[Notification, ...] = ()
    payment_block: PaymentBlock | None = None


class Timeline(Record):
    """Every assignment of one mission, ordered by assignment id."""

    org_id: str
    project_id: str
    mission_id: str
    assignments: tuple[AssignmentTimeline, ...] = ()


class _Event(Protocol):
    @property
    def event_id(self) -> str: ...

    @property
    def occurred_at(self) -> datetime: ...

    @property
    def assignment_id(self) -> str: ...


_Scoped = AssignmentEvent | FactEvent | Contract | PaymentBlock | Notification
E = TypeVar("E", bound=_Event)
R = TypeVar("R")

_VOID_STATUSES = frozenset({ContractStatus.VOID_REQUESTED, ContractStatus.VOIDED})
_CLOSING_EVENTS = frozenset({EventType.DECLINED, EventType.CANCELED})


class _Tenant:
    """The org, project and mission a timeline may show, in canonical form."""

    def __init__(self, org_id: str, project_id: str, mission_id: str) -> None:
        self.org_id = canonical_id(org_id)
        self.project_id = canonical_id(project_id)
        self.mission_id = canonical_id(mission_id)

    def owns_project(self, record: _Scoped) -> bool:
        return (
            canonical_id(record.org_id) == self.org_id
            and canonical_id(record.project_id) == self.project_id
        )

    def owns_event(self, event: AssignmentEvent | FactEvent) -> bool:
        return self.owns_project(event) and self.is_mission(event.mission_id)

    def is_mission(self, mission_id: str) -> bool:
        return canonical_id(mission_id) == self.mission_id


def compose(
    org_id: str,
    project_id: str,
    mission_id: str,
    assignment_events: Iterable[AssignmentEvent],
    contracts: Iterable[Contract],
    facts: Iterable[FactEvent],
    payment_blocks: Iterable[PaymentBlock],
    notifications: Iterable[Notification],
) -> Timeline:
    """Compose the timeline of one mission from the records of its topics."""
    tenant = _Tenant(org_id, project_id, mission_id)
    events = _group(_ordered(e for e in assignment_events if tenant.owns_event(e)))
    done_facts = _group(_ordered(f for f in facts if tenant.owns_event(f)))
    latest = _latest_contracts(tenant, contracts)
    assignment_ids = sorted(events.keys() | done_facts.keys() | latest.keys())

    blocks = _active_blocks(tenant, payment_blocks, set(assignment_ids))
    warnings = _warnings(tenant, notifications, set(assignment_ids))
    rows = tuple(
        AssignmentTimeline(
            assignment_id=assignment_id,
            steps=_steps(
                events.get(assignment_id, []),
                latest.get(assignment_id),
                done_facts.get(assignment_id, []),
                blocks.get(assignment_id),
            ),
            warnings=tuple(warnings.get(assignment_id, [])),
            payment_block=blocks.get(assignment_id),
        )
        for assignment_id in assignment_ids
    )
    return Timeline(
        org_id=org_id, project_id=project_id, mission_id=mission_id, assignments=rows
    )


def _steps(
    events: list[AssignmentEvent],
    contract: Contract | None,
    facts: list[FactEvent],
    block: PaymentBlock | None,
) -> tuple[Step, ...]:
    return (
        _first(StepName.ASSIGNMENT, events),
        _acceptance(events),
        _contract_step(contract),
        _first(StepName.EXECUTION, _facts_of(facts, EXECUTION_FACTS)),
        _first(StepName.INVOICE, _facts_of(facts, {FactType.INVOICE_ISSUED})),
        _payment(_facts_of(facts, {FactType.PAYMENT_MADE}), block),
    )


def _first(step: StepName, events: list[E]) -> Step:
    if not events:
        return Step(step=step, status=StepStatus.MISSING)
    first = events[0]
    return Step(
        step=step, status=StepStatus.DONE, at=first.occurred_at, ref=first.event_id
    )


def _acceptance(events: list[AssignmentEvent]) -> Step:
    # The intake refuses frontend acceptances and any acceptance after a
    # decline or cancel, so neither counts as the assignment being accepted.
    for event in events:
        if event.event_type in _CLOSING_EVENTS:
            break
        if event.event_type is EventType.ACCEPTED and event.source is Source.BACKEND:
            return _first(StepName.ACCEPTANCE, [event])
    return Step(step=StepName.ACCEPTANCE, status=StepStatus.MISSING)


def _contract_step(contract: Contract | None) -> Step:
    if contract is None:
        return Step(step=StepName.CONTRACT, status=StepStatus.MISSING)
    status = StepStatus.VOID if contract.status in _VOID_STATUSES else StepStatus.DONE
    return Step(
        step=StepName.CONTRACT,
        status=status,
        at=contract.issued_at,
        ref=contract.contract_id,
    )


def _payment(payments: list[FactEvent], block: PaymentBlock | None) -> Step:
    if block is not None:
        return Step(
            step=StepName.PAYMENT,
            status=StepStatus.BLOCKED,
            at=block.since,
            ref=block.contract_id,
        )
    return _first(StepName.PAYMENT, payments)


def _facts_of(facts: list[FactEvent], types: Iterable[FactType]) -> list[FactEvent]:
    wanted = frozenset(types)
    return [fact for fact in facts if fact.event_type in wanted]


def _ordered(events: Iterable[E]) -> list[E]:
    """Return `events` sorted by (occurred_at, event_id), each event id once."""
    seen: set[str] = set()
    unique: list[E] = []
    for event in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):
        if event.event_id not in seen:
            seen.add(event.event_id)
            unique.append(event)
    return unique


def _group(events: list[E]) -> dict[str, list[E]]:
    grouped: dict[str, list[E]] = defaultdict(list)
    for event in events:
        grouped[canonical_id(event.assignment_id)].append(event)
    return grouped


def _latest_contracts(
    tenant: _Tenant, contracts: Iterable[Contract]
) -> dict[str, Contract]:
    """Return the newest contract of each assignment of the mission."""
    by_id = _last_by(
        (c for c in contracts if tenant.owns_project(c)), lambda c: c.contract_id
    )
    latest: dict[str, Contract] = {}
    for contract in by_id.values():
        for assignment_id in _mission_assignments(tenant, contract):
            current = latest.get(assignment_id)
            if current is None or _chain_rank(contract) > _chain_rank(current):
                latest[assignment_id] = contract
    return latest


def _mission_assignments(tenant: _Tenant, contract: Contract) -> list[str]:
    return [
        canonical_id(terms.assignment_id)
        for terms in contract.terms
        if tenant.is_mission(terms.mission_id)
    ]


def _chain_rank(contract: Contract) -> tuple[int, datetime, str]:
    # An amendment always follows the contract it supersedes in its chain.
    return (contract.amendment_sequence, contract.issued_at, contract.contract_id)


def _active_blocks(
    tenant: _Tenant, blocks: Iterable[PaymentBlock], assignment_ids: set[str]
) -> dict[str, PaymentBlock]:
    latest = _last_by(
        (b for b in blocks if tenant.owns_project(b)),
        lambda b: canonical_id(b.assignment_id),
    )
    return {
        assignment_id: block
        for assignment_id, block in latest.items()
        if block.blocked and assignment_id in assignment_ids
    }


def _warnings(
    tenant: _Tenant, notifications: Iterable[Notification], assignment_ids: set[str]
) -> dict[str, list[Notification]]:
    unique = _last_by(
        (n for n in notifications if _warns(tenant, n, assignment_ids)),
        lambda n: n.notification_id,
    )
    grouped: dict[str, list[Notification]] = defaultdict(list)
    for note in sorted(
        unique.values(), key=lambda n: (n.occurred_at, n.notification_id)
    ):
        assert note.assignment_id is not None
        grouped[canonical_id(note.assignment_id)].append(note)
    return grouped


def _warns(tenant: _Tenant, note: Notification, assignment_ids: set[str]) -> bool:
    if not tenant.owns_project(note) or note.assignment_id is None:
        return False
    # A warning that names no mission is matched by its assignment alone.
    if note.mission_id is not None and not tenant.is_mission(note.mission_id):
        return False
    return canonical_id(note.assignment_id) in assignment_ids


def _last_by(records: Iterable[R], key: Callable[[R], str]) -> dict[str, R]:
    """Return the last record of each key, as compaction would keep it."""
    return {key(record): record for record in records}
