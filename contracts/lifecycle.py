"""The intake rules: how an assignment event moves the ledger and what it emits.

`apply_event` is a pure function from (ledger entry, event) to (new entry,
outcome). The latest event by occurred_at decides the state; an older event
delivered late never rolls it back, and a repeated event id changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime

from contracts.keys import contract_key, scope_key
from contracts.models import (
    AssignmentEvent,
    AssignmentSnapshot,
    AuditType,
    ContractJob,
    EventType,
    JobKind,
    NotificationCode,
    Parties,
    Record,
    Source,
    Terms,
)
from contracts.outcome import NOTHING, Outcome, audit_event, notification
from contracts.validation import terms_from_event


class AssignmentState(StrEnum):
    PROPOSED = "PROPOSED"
    ACCEPTED = "ACCEPTED"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    DECLINED = "DECLINED"
    CANCELED = "CANCELED"


ACCEPTED_OR_LATER = frozenset(
    {AssignmentState.ACCEPTED, AssignmentState.ACTIVE, AssignmentState.COMPLETED}
)
FINAL = frozenset({AssignmentState.DECLINED, AssignmentState.CANCELED})

# The rationale of a cancel is not kept in the ledger, so a marker sent again
# once the bundle is known says why it comes late.
CANCELED_WHILE_BUNDLED = "assignment canceled while its bundle was being issued"

CHANGE_PATHS = (
    "terms are fixed at acceptance; change them through a new assignment "
    "or an amendment (RequestAmendment)"
)


class LedgerEntry(Record):
    """What the intake knows of one assignment, keyed by its scope."""

    scope: str
    org_id: str
    project_id: str
    assignment_id: str
    mission_id: str
    state: AssignmentState
    last_event_id: str
    last_occurred_at: AwareDatetime
    terms: Terms | None = None
    accepted_at: AwareDatetime | None = None
    contract_template_version: str | None = None
    contract_key: str | None = None
    bundle_id: str | None = None
    parties: Parties | None = None


class BundleLink(Record):
    """The key of a GenerateContract bundle's contract, for one of its assignments.

    The commands stage sends one per assignment once the bundle's job is
    acknowledged, keyed by assignment_id as `assignments` is, so it reaches the
    intake of the partition whose ledger holds the assignment.
    """

    org_id: str
    project_id: str
    assignment_id: str
    contract_key: str
    occurred_at: AwareDatetime
    cause: str
    trace_id: str = ""
    actor_id: str = "system"


@dataclass(frozen=True)
class Decision:
    """The entry to store (None: leave it as it is) and the records to emit."""

    entry: LedgerEntry | None
    outcome: Outcome = NOTHING
    duplicate: bool = False
    stale: bool = False


def apply_event(
    entry: LedgerEntry | None,
    event: AssignmentEvent,
    *,
    known_templates: Collection[str],
    now: datetime,
) -> Decision:
    """Apply one assignment event to its ledger entry."""
    if entry is not None and entry.last_event_id == event.event_id:
        return Decision(None, duplicate=True)
    if event.event_type is EventType.ACCEPTED and event.source is Source.FRONTEND:
        return Decision(None, _refused_request(event, now, "frontend acceptance"))
    if entry is not None and event.occurred_at < entry.last_occurred_at:
        return Decision(None, stale=True)

    handler = _HANDLERS[event.event_type]
    return handler(entry, event, known_templates, now)


def apply_link(entry: LedgerEntry | None, link: BundleLink) -> Decision:
    """Record on an assignment's entry the key of the bundle that contracts it.

    A cancel then sends its marker to the bundle's key. An assignment cancelled
    before its link arrived sent its marker to its own key, where no job goes:
    the marker is sent again, to the bundle's key. The bundle's job was
    acknowledged before its links were sent, so the marker comes after it and
    voids the contract the job issues.
    """
    if entry is None or entry.bundle_id is None:
        return Decision(None)
    if entry.contract_key == link.contract_key:
        return Decision(None, duplicate=True)
    linked = entry.model_copy(update={"contract_key": link.contract_key})
    if entry.state is AssignmentState.CANCELED:
        marker = _job_for(
            linked,
            JobKind.CANCEL,
            at=entry.last_occurred_at,
            trace_id=link.trace_id,
            cause=entry.last_event_id,
            actor_id=link.actor_id,
            reason=CANCELED_WHILE_BUNDLED,
        )
        return Decision(linked, Outcome(jobs=(marker,)))
    if entry.state not in ACCEPTED_OR_LATER:
        return Decision(None)
    return Decision(linked)


def _on_proposed(
    entry: LedgerEntry | None,
    event: AssignmentEvent,
    known_templates: Collection[str],
    now: datetime,
) -> Decision:
    if entry is not None and entry.state is not AssignmentState.PROPOSED:
        return _refused_change(entry, event, now)
    terms = terms_from_event(event, known_templates)
    return Decision(_moved(entry, event, AssignmentState.PROPOSED, terms=terms))


_on_changed = _on_proposed


def _on_accepted(
    entry: LedgerEntry | None,
    event: AssignmentEvent,
    known_templates: Collection[str],
    now: datetime,
) -> Decision:
    if entry is not None and entry.state in FINAL:
        reason = f"assignment is {entry.state.value.lower()}"
        return Decision(None, _refused_request(event, now, reason))
    terms = terms_from_event(event, known_templates)
    if entry is not None and entry.state in ACCEPTED_OR_LATER:
        if terms != entry.terms:
            return _refused_change(entry, event, now)
        if entry.bundle_id is not None:
            # A bundled assignment is contracted only with its bundle: a job
            # under its own key would be a second contract for it.
            return Decision(_touched(entry, event))
        # The same terms accepted again: re-enqueue; issuance is idempotent.
        return Decision(_touched(entry, event), _enqueue(entry, event))

    accepted = _moved(entry, event, AssignmentState.ACCEPTED, terms=terms)
    accepted = accepted.model_copy(
        update={
            "accepted_at": event.occurred_at,
            "contract_template_version": event.contract_template_version,
            "bundle_id": event.bundle_id,
            "parties": event.parties,
            "contract_key": contract_key(
                event.org_id,
                event.project_id,
                [event.assignment_id],
                terms_template(event),
            ),
        }
    )
    if event.bundle_id is not None:
        # A bundled acceptance waits for the GenerateContract that names it.
        return Decision(accepted)
    return Decision(accepted, _enqueue(accepted, event))


def _on_declined(
    entry: LedgerEntry | None,
    event: AssignmentEvent,
    known_templates: Collection[str],
    now: datetime,
) -> Decision:
    if entry is not None and entry.state in ACCEPTED_OR_LATER:
        return _refused_change(entry, event, now)
    return Decision(_moved(entry, event, AssignmentState.DECLINED))


def _on_canceled(
    entry: LedgerEntry | None,
    event: AssignmentEvent,
    known_templates: Collection[str],
    now: datetime,
) -> Decision:
    canceled = _moved(entry, event, AssignmentState.CANCELED)
    if entry is None or entry.contract_key is None:
        return Decision(canceled)
    # The generator owns the registry: it skips a pending job or voids an
    # issued contract when this marker reaches it, in order with the job.
    marker = _job(entry, event, JobKind.CANCEL)
    return Decision(canceled, Outcome(jobs=(marker,)))


_HANDLERS = {
    EventType.PROPOSED: _on_proposed,
    EventType.CHANGED: _on_changed,
    EventType.ACCEPTED: _on_accepted,
    EventType.DECLINED: _on_declined,
    EventType.CANCELED: _on_canceled,
}


def terms_template(event: AssignmentEvent) -> str:
    """The template version an event names (validated before this is called)."""
    assert event.contract_template_version is not None
    return event.contract_template_version


def _moved(
    entry: LedgerEntry | None,
    event: AssignmentEvent,
    state: AssignmentState,
    *,
    terms: Terms | None = None,
) -> LedgerEntry:
    if entry is None:
        return LedgerEntry(
            scope=scope_key(event.org_id, event.project_id, event.assignment_id),
            org_id=event.org_id,
            project_id=event.project_id,
            assignment_id=event.assignment_id,
            mission_id=event.mission_id,
            state=state,
            last_event_id=event.event_id,
            last_occurred_at=event.occurred_at,
            terms=terms,
        )
    update: dict[str, object] = {"state": state}
    if terms is not None:
        update["terms"] = terms
    return _touched(entry, event).model_copy(update=update)


def _touched(entry: LedgerEntry, event: AssignmentEvent) -> LedgerEntry:
    return entry.model_copy(
        update={"last_event_id": event.event_id, "last_occurred_at": event.occurred_at}
    )


def _enqueue(entry: LedgerEntry, event: AssignmentEvent) -> Outcome:
    return Outcome(jobs=(_job(entry, event, JobKind.GENERATE),))


def _job(entry: LedgerEntry, event: AssignmentEvent, kind: JobKind) -> ContractJob:
    # The issue time is the instant of the request, not the wall clock, so a
    # replay of the same input renders the same document.
    return _job_for(
        entry,
        kind,
        at=event.occurred_at,
        trace_id=event.trace_id,
        cause=event.event_id,
        actor_id=event.actor_id,
        reason=event.rationale if kind is JobKind.CANCEL else None,
    )


def _job_for(
    entry: LedgerEntry,
    kind: JobKind,
    *,
    at: datetime,
    trace_id: str,
    cause: str,
    actor_id: str,
    reason: str | None,
) -> ContractJob:
    assert entry.terms is not None and entry.accepted_at is not None
    assert entry.contract_key is not None and entry.contract_template_version
    snapshot = AssignmentSnapshot(
        terms=entry.terms,
        parties=entry.parties if kind is JobKind.GENERATE else None,
        accepted_at=entry.accepted_at,
        actor_id=actor_id,
    )
    return ContractJob(
        kind=kind,
        contract_key=entry.contract_key,
        org_id=entry.org_id,
        project_id=entry.project_id,
        assignments=(snapshot,),
        contract_template_version=entry.contract_template_version,
        issued_at=at,
        first_attempt_at=at,
        trace_id=trace_id,
        cause=cause,
        actor_id=actor_id,
        reason=reason,
    )


def _refused_change(
    entry: LedgerEntry, event: AssignmentEvent, now: datetime
) -> Decision:
    message = (
        f"{event.event_type.value} refused on assignment {event.assignment_id} "
        f"in state {entry.state.value}: {CHANGE_PATHS}"
    )
    outcome = _refusal(
        event,
        now,
        AuditType.CHANGE_REFUSED,
        NotificationCode.CHANGE_REFUSED,
        message,
    )
    return Decision(None, outcome)


def _refused_request(event: AssignmentEvent, now: datetime, reason: str) -> Outcome:
    message = (
        f"{event.event_type.value} from {event.source.value} refused on "
        f"assignment {event.assignment_id}: {reason}; no contract is issued"
    )
    return _refusal(
        event,
        now,
        AuditType.REQUEST_REFUSED,
        NotificationCode.REQUEST_REFUSED,
        message,
    )


def _refusal(
    event: AssignmentEvent,
    now: datetime,
    audit_type: AuditType,
    code: NotificationCode,
    message: str,
) -> Outcome:
    scope = scope_key(event.org_id, event.project_id, event.assignment_id)
    common: dict[str, Any] = {
        "org_id": event.org_id,
        "project_id": event.project_id,
        "mission_id": event.mission_id,
        "assignment_id": event.assignment_id,
        "trace_id": event.trace_id,
        "now": now,
    }
    audit = audit_event(
        audit_type,
        subject=scope,
        cause=event.event_id,
        attempt=0,
        outcome="refused",
        actor_id=event.actor_id,
        payload={"event_type": event.event_type.value, "reason": message},
        **common,
    )
    note = notification(
        code, subject=scope, cause=event.event_id, message=message, **common
    )
    return Outcome(audits=(audit,), notifications=(note,))
