"""The generator's rules: what a job does against the contract registry.

The registry maps a contract key to what became of it: the contract issued
under it, or a cancellation that arrived before any contract. The stage asks
`plan` what to do; only an issue needs rendering and storage, which the stage
does before it calls `issued` to get the records and the new registry entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.errors import MissingPartyError
from contracts.keys import contract_id as derive_contract_id
from contracts.keys import scope_key
from contracts.models import (
    AuditType,
    CollaboratorParty,
    Contract,
    ContractBody,
    ContractJob,
    ContractParties,
    ContractStatus,
    Document,
    JobKind,
    NamedCollaborator,
    OrganizationParty,
    PaymentBlock,
    Record,
    Terms,
)
from contracts.outcome import NOTHING, Outcome, audit_event


class RegistryEntry(Record):
    """What became of one contract key."""

    contract_key: str
    contract: Contract | None = None
    canceled: bool = False
    cancel_cause: str | None = None
    void_requested_at: datetime | None = None
    # The delivery that issued the contract, and when its audits say it did:
    # enough to send that issuance's records again, identical, if the entry
    # reached the broker before they did.
    issued_by: str | None = None
    issued_cause: str | None = None
    issued_attempt: int | None = None
    issue_audited_at: datetime | None = None


OrganizationLookup = Callable[[str], OrganizationParty | None]
CollaboratorLookup = Callable[[str], CollaboratorParty | None]


@dataclass(frozen=True)
class Plan:
    """What to do with a job: emit `outcome`, store `entry`, or issue."""

    outcome: Outcome = NOTHING
    entry: RegistryEntry | None = None
    issue: bool = False
    label: str = "noop"
    refusal: str | None = None


def plan(
    job: ContractJob,
    entry: RegistryEntry | None,
    *,
    delivery: str,
    now: datetime,
) -> Plan:
    """Decide what a job does, given the registry entry for its key.

    `delivery` names where this copy of the job was read (topic, partition,
    offset), so that auditing a duplicate never overwrites the audit of the
    attempt that issued the contract. The very delivery that issued it, read
    again after a crash, gets every record of its issuance back instead: the
    stage may record the key before those records are acknowledged.
    """
    if job.kind is JobKind.CANCEL:
        return _plan_cancel(job, entry, now)
    if job.kind is JobKind.RESOLVE:
        return _plan_resolve(job, entry, now)
    if entry is not None and entry.contract is not None:
        if _issued_by(entry, job, delivery):
            audited_at = entry.issue_audited_at or now
            outcome = _issuance(job, entry.contract, audited_at)
            return Plan(outcome, label="replayed")
        if _terms(job) != entry.contract.terms:
            # Same key, other terms: a second amendment of a contract that an
            # earlier one already superseded. Issuing it would change a contract.
            return _refusal(
                job,
                now,
                f"contract {entry.contract.supersedes_contract_id or ''} was already "
                f"amended as {entry.contract.contract_id}; amend the latest contract",
            )
        outcome = Outcome(contracts=(entry.contract,)) + _attempts(
            job, now, "duplicate", cause=f"{job.cause}#{delivery}"
        )
        return Plan(outcome, label="duplicate")
    if entry is not None and entry.canceled:
        return Plan(_skipped(job, now), label="skipped")
    return Plan(issue=True, label="issue")


def contract_body(
    job: ContractJob,
    organizations: OrganizationLookup,
    collaborators: CollaboratorLookup,
) -> ContractBody:
    """The document's content; raises MissingPartyError when a party is unknown."""
    snapshots = job.assignments
    organization = next(
        (
            s.parties.organization
            for s in snapshots
            if s.parties and s.parties.organization
        ),
        None,
    ) or organizations(job.org_id)
    if organization is None:
        raise MissingPartyError(f"no party data for organization {job.org_id!r}")

    named: dict[str, NamedCollaborator] = {}
    for snapshot in snapshots:
        collaborator_id = snapshot.terms.collaborator_id
        party = (
            snapshot.parties.collaborator if snapshot.parties else None
        ) or collaborators(collaborator_id)
        if party is None:
            raise MissingPartyError(
                f"no party data for collaborator {collaborator_id!r}"
            )
        named[collaborator_id] = NamedCollaborator(
            collaborator_id=collaborator_id, **party.model_dump()
        )

    return ContractBody(
        org_id=job.org_id,
        project_id=job.project_id,
        parties=ContractParties(
            organization=organization,
            collaborators=tuple(named[k] for k in sorted(named)),
        ),
        terms=_terms(job),
        contract_template_version=job.contract_template_version,
        amendment_sequence=job.amendment_sequence,
        supersedes_contract_id=job.supersedes_contract_id,
        issued_at=job.issued_at,
    )


def contract_id_for(job: ContractJob) -> str:
    """The id the contract of this job has, on every worker and every replay."""
    return derive_contract_id(job.contract_key)


def issued(
    job: ContractJob,
    body: ContractBody,
    document: Document,
    *,
    now: datetime,
    delivery: str | None = None,
) -> tuple[RegistryEntry, Outcome]:
    """The registry entry and records of a contract just rendered and stored.

    With `delivery`, the entry remembers which delivery issued the contract,
    so that a replay of that delivery can send the same records again.
    """
    contract = Contract(
        contract_id=contract_id_for(job),
        contract_key=job.contract_key,
        org_id=job.org_id,
        project_id=job.project_id,
        assignment_ids=job.assignment_ids,
        parties=body.parties,
        terms=body.terms,
        contract_template_version=job.contract_template_version,
        amendment_sequence=job.amendment_sequence,
        supersedes_contract_id=job.supersedes_contract_id,
        document=document,
        trace_id=job.trace_id,
        issued_at=job.issued_at,
    )
    entry = RegistryEntry(contract_key=job.contract_key, contract=contract)
    if delivery is not None:
        entry = entry.model_copy(
            update={
                "issued_by": delivery,
                "issued_cause": job.cause,
                "issued_attempt": job.attempt,
                "issue_audited_at": now,
            }
        )
    return entry, _issuance(job, contract, now)


def _issuance(job: ContractJob, contract: Contract, now: datetime) -> Outcome:
    document = contract.document
    return (
        Outcome(contracts=(contract,))
        + _attempts(job, now, "success", contract_id=contract.contract_id)
        + _per_assignment(
            job,
            AuditType.GENERATED,
            now,
            "issued",
            contract_id=contract.contract_id,
            payload={"sha256": document.sha256, "uri": document.uri},
        )
    )


def _issued_by(entry: RegistryEntry, job: ContractJob, delivery: str) -> bool:
    # Cause and attempt as well as the position: a topic created again
    # restarts its offsets, and another job could then sit at that position.
    return (
        entry.issued_by == delivery
        and entry.issued_cause == job.cause
        and entry.issued_attempt == job.attempt
    )


def failed_attempt(
    job: ContractJob,
    error: str,
    *,
    now: datetime,
    retry_at: datetime | None = None,
    retry_in: float | None = None,
) -> Outcome:
    """The audit of an attempt that failed with `error`.

    A retried attempt also says when the next one falls due, so the backoff
    can be read from the audit trail alone.
    """
    payload = {"error": error}
    if retry_at is not None and retry_in is not None:
        payload["retry_in_seconds"] = f"{retry_in:.3f}"
        payload["retry_at"] = retry_at.isoformat()
    return _attempts(job, now, "failed", payload=payload)


def dead_lettered(job: ContractJob, error: str, *, now: datetime) -> Outcome:
    """The audit of a job given up on, after its last attempt or a permanent error."""
    return failed_attempt(job, error, now=now) + _per_assignment(
        job, AuditType.GENERATION_FAILED, now, "dead_lettered", payload={"error": error}
    )


def _plan_cancel(job: ContractJob, entry: RegistryEntry | None, now: datetime) -> Plan:
    if entry is None or entry.contract is None:
        marked = RegistryEntry(
            contract_key=job.contract_key, canceled=True, cancel_cause=job.cause
        )
        return Plan(entry=marked, label="canceled")
    if entry.contract.status is not ContractStatus.ISSUED:
        return Plan(label="already_void")

    voiding = entry.contract.model_copy(
        update={"status": ContractStatus.VOID_REQUESTED, "trace_id": job.trace_id}
    )
    reason = job.reason or "assignment canceled after its contract was issued"
    outcome = Outcome(
        contracts=(voiding,),
        payment_blocks=tuple(
            _block(voiding, terms.assignment_id, reason, job, now)
            for terms in voiding.terms
        ),
    ) + _per_assignment(
        job,
        AuditType.VOID_REQUESTED,
        now,
        "void_requested",
        contract_id=voiding.contract_id,
        payload={"rationale": reason},
    )
    marked = entry.model_copy(update={"contract": voiding, "void_requested_at": now})
    return Plan(outcome, marked, label="void")


def _plan_resolve(job: ContractJob, entry: RegistryEntry | None, now: datetime) -> Plan:
    contract = entry.contract if entry is not None else None
    if entry is None or contract is None:
        return _refusal(job, now, f"no contract under key {job.contract_key}")
    if contract.status is not ContractStatus.VOID_REQUESTED:
        return _refusal(
            job, now, f"contract {contract.contract_id} has no void to resolve"
        )

    status = ContractStatus.VOIDED if job.reason == "VOIDED" else ContractStatus.ISSUED
    resolved = contract.model_copy(update={"status": status, "trace_id": job.trace_id})
    since = entry.void_requested_at or now
    blocks = tuple(
        _block(
            resolved, t.assignment_id, f"void resolved: {job.reason}", job, since
        ).model_copy(update={"blocked": False, "resolved_at": now})
        for t in resolved.terms
    )
    audits = tuple(
        audit_event(
            AuditType.VOID_RESOLVED,
            subject=job.contract_key,
            cause=job.cause,
            attempt=job.attempt,
            outcome=status.value.lower(),
            org_id=job.org_id,
            project_id=job.project_id,
            assignment_id=t.assignment_id,
            mission_id=t.mission_id,
            contract_id=resolved.contract_id,
            actor_id=job.actor_id,
            trace_id=job.trace_id,
            payload={"resolution": job.reason or ""},
            now=now,
        )
        for t in resolved.terms
    )
    outcome = Outcome(contracts=(resolved,), payment_blocks=blocks, audits=audits)
    return Plan(
        outcome, entry.model_copy(update={"contract": resolved}), label="resolved"
    )


def _refusal(job: ContractJob, now: datetime, reason: str) -> Plan:
    outcome = _per_assignment(
        job, AuditType.REQUEST_REFUSED, now, "refused", payload={"reason": reason}
    )
    return Plan(outcome, label="refused", refusal=reason)


def _terms(job: ContractJob) -> tuple[Terms, ...]:
    return tuple(
        sorted((s.terms for s in job.assignments), key=lambda t: t.assignment_id)
    )


def _block(
    contract: Contract, assignment_id: str, reason: str, job: ContractJob, now: datetime
) -> PaymentBlock:
    return PaymentBlock(
        scope=scope_key(contract.org_id, contract.project_id, assignment_id),
        org_id=contract.org_id,
        project_id=contract.project_id,
        assignment_id=assignment_id,
        contract_id=contract.contract_id,
        blocked=True,
        reason=reason,
        since=now,
        trace_id=job.trace_id,
    )


def _skipped(job: ContractJob, now: datetime) -> Outcome:
    return _per_assignment(
        job,
        AuditType.GENERATION_SKIPPED,
        now,
        "skipped",
        payload={"reason": "assignment canceled before issuance"},
    )


def _attempts(job: ContractJob, now: datetime, outcome: str, **fields: Any) -> Outcome:
    return _per_assignment(job, AuditType.GENERATION_ATTEMPT, now, outcome, **fields)


def _per_assignment(
    job: ContractJob,
    type_: AuditType,
    now: datetime,
    outcome: str,
    *,
    cause: str | None = None,
    **fields: Any,
) -> Outcome:
    # Audit stays per assignment, so a bundled contract writes one record each.
    audits = tuple(
        audit_event(
            type_,
            subject=job.contract_key,
            cause=cause or job.cause,
            attempt=job.attempt,
            outcome=outcome,
            org_id=job.org_id,
            project_id=job.project_id,
            assignment_id=snapshot.terms.assignment_id,
            mission_id=snapshot.terms.mission_id,
            actor_id=snapshot.actor_id,
            trace_id=job.trace_id,
            now=now,
            **fields,
        )
        for snapshot in job.assignments
    )
    return Outcome(audits=audits)
