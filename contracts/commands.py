"""Explicit requests from backend services, and what each one asks of the generator.

Commands arrive keyed by command_id, so the state they need (accepted
assignments, issued contracts) is read from views every worker holds; the
change itself is made by a job on `contract.jobs`, in order with every other
job of its key.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field, field_validator

from contracts.aggregation import group_of_bundle
from contracts.errors import PermanentError, ReasonCode, TransientError
from contracts.keys import canonical_id, contract_key, scope_key
from contracts.lifecycle import ACCEPTED_OR_LATER, BundleLink, LedgerEntry
from contracts.models import (
    AssignmentSnapshot,
    AuditType,
    CollaboratorParty,
    Contract,
    ContractJob,
    ContractStatus,
    JobKind,
    Parties,
    Rate,
    Record,
    Terms,
)
from contracts.outcome import Outcome, audit_event
from contracts.validation import check_same_tenant, validate_rate


class CommandType(StrEnum):
    GENERATE = "GenerateContract"
    AMEND = "RequestAmendment"
    PREVIEW = "RequestDraftPreview"
    RESOLVE = "ResolveVoid"


class TermChanges(Record):
    """The terms an amendment changes on one assignment; the rest stay."""

    role: str | None = None
    rate: Rate | None = None
    start_date: date | None = None
    end_date: date | None = None


class BundleMember(Record):
    """An assignment named by a bundle, with its tenant when the sender gives it."""

    assignment_id: str
    org_id: str | None = None
    project_id: str | None = None


class DraftAssignment(Record):
    """The assignment a preview shows: an assignment event's fields, unaccepted."""

    org_id: str
    project_id: str
    mission_id: str
    assignment_id: str
    collaborator_id: str
    role: str
    rate: Rate
    start_date: date
    end_date: date
    contract_template_version: str
    parties: Parties | None = None


class Command(Record):
    """A request on `contract.commands`, keyed by command_id."""

    command_id: str
    command_type: CommandType
    issued_at: AwareDatetime
    trace_id: str = ""
    actor_id: str = "system"
    org_id: str | None = None
    project_id: str | None = None
    assignment_ids: tuple[BundleMember, ...] = ()
    contract_template_version: str | None = None
    contract_id: str | None = None
    reason: str | None = None
    changes: dict[str, TermChanges] = Field(default_factory=dict)
    request_id: str | None = None
    assignment: DraftAssignment | None = None
    resolution: Literal["VOIDED", "REINSTATED"] | None = None

    @field_validator("assignment_ids", mode="before")
    @classmethod
    def _members(cls, value: object) -> object:
        # Senders may name bare ids (the command's tenant) or tenant-qualified ones.
        if isinstance(value, list | tuple):
            return [{"assignment_id": v} if isinstance(v, str) else v for v in value]
        return value


StateLookup = Callable[[str], LedgerEntry | None]
ContractLookup = Callable[[str], Contract | None]


def refused(reason: str) -> PermanentError:
    """A request the rules refuse; dead-lettered with reason REFUSED."""
    return PermanentError(reason, reason_code=ReasonCode.REFUSED)


def bundle_job(command: Command, states: StateLookup) -> ContractJob:
    """The job issuing one contract for every assignment a GenerateContract names."""
    org_id, project_id = _tenant(command)
    if not command.assignment_ids:
        raise PermanentError("GenerateContract names no assignment")
    check_same_tenant(
        [(org_id, project_id)]
        + [
            (m.org_id or org_id, m.project_id or project_id)
            for m in command.assignment_ids
        ]
    )

    entries = [
        _bundled_entry(states, org_id, project_id, m.assignment_id)
        for m in command.assignment_ids
    ]
    templates = {e.contract_template_version for e in entries}
    if command.contract_template_version is None and len(templates) > 1:
        raise PermanentError(
            "bundled acceptances name different templates "
            f"{sorted(map(str, templates))}; name one in the command"
        )
    template = command.contract_template_version or templates.pop() or ""
    ids = [e.assignment_id for e in entries]
    key = contract_key(org_id, project_id, ids, template)
    for entry in entries:
        _check_not_bundled_elsewhere(entry, key)
    return ContractJob(
        kind=JobKind.GENERATE,
        contract_key=key,
        org_id=org_id,
        project_id=project_id,
        assignments=tuple(_snapshot(e, command) for e in _unique(entries)),
        contract_template_version=template,
        issued_at=command.issued_at,
        first_attempt_at=command.issued_at,
        trace_id=command.trace_id,
        cause=command.command_id,
        actor_id=command.actor_id,
    )


def bundle_links(job: ContractJob, command: Command) -> tuple[BundleLink, ...]:
    """Tell the intake of each assignment in a bundle the key of its contract.

    Send them only once the bundle's job is acknowledged: a cancel marker the
    intake sends on a link must reach `contract.jobs` after the job.
    """
    return tuple(
        BundleLink(
            org_id=job.org_id,
            project_id=job.project_id,
            assignment_id=s.terms.assignment_id,
            contract_key=job.contract_key,
            occurred_at=command.issued_at,
            cause=command.command_id,
            trace_id=command.trace_id,
            actor_id=command.actor_id,
        )
        for s in job.assignments
    )


def amendment_job(
    command: Command, base: Contract | None, known_templates: Collection[str]
) -> tuple[ContractJob, Outcome]:
    """The job issuing an amendment of `base`, and its amendment_requested audit."""
    contract = _owned_contract(command, base)
    if contract.status is not ContractStatus.ISSUED:
        raise refused(f"contract {contract.contract_id} is {contract.status.value}")
    if not command.changes:
        raise PermanentError("RequestAmendment changes nothing")
    unknown = set(command.changes) - {t.assignment_id for t in contract.terms}
    if unknown:
        raise refused(f"contract does not cover assignments {sorted(unknown)}")

    template = command.contract_template_version or contract.contract_template_version
    if template not in known_templates:
        raise PermanentError(
            f"unknown contract template version {template!r}",
            reason_code=ReasonCode.UNKNOWN_TEMPLATE,
        )
    sequence = contract.amendment_sequence + 1
    job = ContractJob(
        kind=JobKind.GENERATE,
        contract_key=contract_key(
            contract.org_id,
            contract.project_id,
            contract.assignment_ids,
            template,
            sequence,
        ),
        org_id=contract.org_id,
        project_id=contract.project_id,
        assignments=tuple(_amended(contract, t, command) for t in contract.terms),
        contract_template_version=template,
        amendment_sequence=sequence,
        supersedes_contract_id=contract.contract_id,
        issued_at=command.issued_at,
        first_attempt_at=command.issued_at,
        trace_id=command.trace_id,
        cause=command.command_id,
        actor_id=command.actor_id,
        reason=command.reason,
    )
    return job, _amendment_audits(job, contract, command)


def resolution_job(command: Command, contract: Contract | None) -> ContractJob:
    """The job resolving a requested void, to VOIDED or back to ISSUED."""
    owned = _owned_contract(command, contract)
    if command.resolution is None:
        raise PermanentError("ResolveVoid needs a resolution: VOIDED or REINSTATED")
    return ContractJob(
        kind=JobKind.RESOLVE,
        contract_key=owned.contract_key,
        org_id=owned.org_id,
        project_id=owned.project_id,
        assignments=(),
        contract_template_version=owned.contract_template_version,
        amendment_sequence=owned.amendment_sequence,
        issued_at=command.issued_at,
        first_attempt_at=command.issued_at,
        trace_id=command.trace_id,
        cause=command.command_id,
        actor_id=command.actor_id,
        reason=command.resolution,
    )


def _tenant(command: Command) -> tuple[str, str]:
    if not command.org_id or not command.project_id:
        raise PermanentError(
            f"{command.command_type.value} needs org_id and project_id"
        )
    return command.org_id, command.project_id


def _bundled_entry(
    states: StateLookup, org_id: str, project_id: str, assignment_id: str
) -> LedgerEntry:
    entry = states(scope_key(org_id, project_id, assignment_id))
    if entry is None or entry.state not in ACCEPTED_OR_LATER:
        # The intake may not have caught up with the acceptance yet.
        raise TransientError(f"assignment {assignment_id!r} is not accepted (yet)")
    if entry.bundle_id is None:
        raise refused(
            f"assignment {assignment_id!r} was accepted without a bundle_id and is "
            "contracted on its own; change it through an amendment"
        )
    if group_of_bundle(entry.bundle_id) is not None:
        raise refused(
            f"assignment {assignment_id!r} is bundled by the aggregation policy "
            "and contracted with its window; change it through an amendment"
        )
    return entry


def _check_not_bundled_elsewhere(entry: LedgerEntry, key: str) -> None:
    # A linked entry carries its bundle's key in place of its own; the same
    # bundle asked again maps to that key and is issued once.
    own = contract_key(
        entry.org_id,
        entry.project_id,
        [entry.assignment_id],
        entry.contract_template_version or "",
    )
    if entry.contract_key not in (None, own, key):
        raise refused(
            f"assignment {entry.assignment_id!r} already has a contract under key "
            f"{entry.contract_key}; change it through an amendment"
        )


def _unique(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    by_id = {canonical_id(e.assignment_id): e for e in entries}
    return [by_id[k] for k in sorted(by_id)]


def _snapshot(entry: LedgerEntry, command: Command) -> AssignmentSnapshot:
    assert entry.terms is not None and entry.accepted_at is not None
    return AssignmentSnapshot(
        terms=entry.terms,
        parties=entry.parties,
        accepted_at=entry.accepted_at,
        actor_id=command.actor_id,
    )


def _owned_contract(command: Command, contract: Contract | None) -> Contract:
    org_id, project_id = _tenant(command)
    if contract is None or (
        canonical_id(contract.org_id),
        canonical_id(contract.project_id),
    ) != (canonical_id(org_id), canonical_id(project_id)):
        # Another tenant's contract reads exactly like one that does not exist.
        raise TransientError(f"contract {command.contract_id!r} is not known (yet)")
    return contract


def _amended(contract: Contract, terms: Terms, command: Command) -> AssignmentSnapshot:
    changes = command.changes.get(terms.assignment_id)
    new_terms = terms
    if changes is not None:
        update = changes.model_dump(exclude_none=True)
        new_terms = terms.model_copy(
            update={**update, "rate": changes.rate or terms.rate}
        )
        if new_terms.end_date < new_terms.start_date:
            raise PermanentError(
                f"amended end_date {new_terms.end_date} is before start_date "
                f"{new_terms.start_date}"
            )
        validate_rate(new_terms.rate)
    collaborator = next(
        c
        for c in contract.parties.collaborators
        if c.collaborator_id == terms.collaborator_id
    )
    return AssignmentSnapshot(
        terms=new_terms,
        parties=Parties(
            organization=contract.parties.organization,
            collaborator=CollaboratorParty.model_validate(
                collaborator.model_dump(exclude={"collaborator_id"})
            ),
        ),
        accepted_at=contract.issued_at,
        actor_id=command.actor_id,
    )


def _amendment_audits(job: ContractJob, base: Contract, command: Command) -> Outcome:
    audits = tuple(
        audit_event(
            AuditType.AMENDMENT_REQUESTED,
            subject=job.contract_key,
            cause=command.command_id,
            attempt=0,
            outcome="requested",
            org_id=job.org_id,
            project_id=job.project_id,
            assignment_id=s.terms.assignment_id,
            mission_id=s.terms.mission_id,
            contract_id=base.contract_id,
            actor_id=command.actor_id,
            trace_id=command.trace_id,
            payload={
                "reason": command.reason or "",
                "amendment_sequence": str(job.amendment_sequence),
            },
            now=command.issued_at,
        )
        for s in job.assignments
    )
    return Outcome(audits=audits)


def preview_job(command: Command) -> ContractJob:
    """What a draft preview shows, shaped as a job that is never sent.

    The preview renders through the same path as an issue, so the draft looks
    exactly like the contract would; its key is not a contract key and mints
    no contract id.
    """
    draft = command.assignment
    if draft is None or not command.request_id:
        raise PermanentError("RequestDraftPreview needs request_id and assignment")
    if draft.end_date < draft.start_date:
        raise PermanentError(
            f"end_date {draft.end_date} is before start_date {draft.start_date}"
        )
    validate_rate(draft.rate)
    terms = Terms(
        assignment_id=draft.assignment_id,
        mission_id=draft.mission_id,
        collaborator_id=draft.collaborator_id,
        role=draft.role,
        rate=draft.rate,
        start_date=draft.start_date,
        end_date=draft.end_date,
    )
    snapshot = AssignmentSnapshot(
        terms=terms,
        parties=draft.parties,
        accepted_at=command.issued_at,
        actor_id=command.actor_id,
    )
    return ContractJob(
        kind=JobKind.GENERATE,
        contract_key=f"preview:{command.request_id}",
        org_id=draft.org_id,
        project_id=draft.project_id,
        assignments=(snapshot,),
        contract_template_version=draft.contract_template_version,
        issued_at=command.issued_at,
        first_attempt_at=command.issued_at,
        trace_id=command.trace_id,
        cause=command.command_id,
        actor_id=command.actor_id,
    )
