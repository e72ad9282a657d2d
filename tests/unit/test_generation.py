"""The generator's rules against the registry, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import generation
from contracts.errors import MissingPartyError
from contracts.generation import RegistryEntry
from contracts.lifecycle import apply_event
from contracts.models import (
    AuditType,
    ContractJob,
    ContractStatus,
    Document,
    JobKind,
)
from contracts.outcome import Outcome
from tests.factories import COLLABORATOR, ORGANIZATION, TEMPLATES, event

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DOC = Document(
    uri="file:///x.pdf", sha256="ab" * 32, media_type="application/pdf", size=9
)


def job_for(**overrides: object) -> ContractJob:
    decision = apply_event(
        None,
        event("AssignmentAccepted", **overrides),
        known_templates=TEMPLATES,
        now=NOW,
    )
    [job] = decision.outcome.jobs
    return job


def cancel_for(job: ContractJob) -> ContractJob:
    return job.model_copy(
        update={"kind": JobKind.CANCEL, "cause": "evt-cancel", "reason": "budget cut"}
    )


def issue(job: ContractJob) -> tuple[RegistryEntry, generation.Outcome]:
    body = generation.contract_body(job, lambda _: None, lambda _: None)
    return generation.issued(job, body, DOC, now=NOW)


def test_a_new_key_is_planned_for_issue() -> None:
    plan = generation.plan(job_for(), None, delivery="jobs/0/1", now=NOW)

    assert plan.issue and not plan.outcome


def test_an_issue_emits_the_contract_an_attempt_and_a_generated_audit() -> None:
    job = job_for()
    entry, outcome = issue(job)

    [contract] = outcome.contracts
    assert entry.contract == contract
    assert contract.contract_id == generation.contract_id_for(job)
    assert contract.status is ContractStatus.ISSUED
    assert contract.document == DOC
    assert contract.parties.organization == ORGANIZATION
    assert sorted(a.type for a in outcome.audits) == [
        AuditType.GENERATED,
        AuditType.GENERATION_ATTEMPT,
    ]
    assert {a.trace_id for a in outcome.audits} == {job.trace_id}


def test_a_key_already_issued_reemits_the_same_contract_and_audits_a_duplicate() -> (
    None
):
    job = job_for()
    entry, first = issue(job)

    plan = generation.plan(job, entry, delivery="jobs/0/7", now=NOW)

    assert not plan.issue and plan.entry is None
    assert plan.outcome.contracts == first.contracts
    [audit] = plan.outcome.audits
    assert audit.outcome == "duplicate"
    assert audit.audit_id not in {a.audit_id for a in first.audits}


def test_the_same_duplicate_delivery_replayed_rewrites_the_same_audit_id() -> None:
    job = job_for()
    entry, _ = issue(job)

    one = generation.plan(job, entry, delivery="jobs/0/7", now=NOW)
    two = generation.plan(job, entry, delivery="jobs/0/7", now=NOW)

    assert one.outcome.audits[0].audit_id == two.outcome.audits[0].audit_id


def test_a_cancel_before_issuance_marks_the_key_and_the_job_is_then_skipped() -> None:
    job = job_for()
    cancel = generation.plan(cancel_for(job), None, delivery="jobs/0/1", now=NOW)

    assert cancel.entry is not None and cancel.entry.canceled
    later = generation.plan(job, cancel.entry, delivery="jobs/0/2", now=NOW)
    assert not later.issue and not later.outcome.contracts
    assert [a.type for a in later.outcome.audits] == [AuditType.GENERATION_SKIPPED]


def test_a_cancel_after_issuance_requests_a_void_and_blocks_payment() -> None:
    job = job_for()
    entry, _ = issue(job)

    plan = generation.plan(cancel_for(job), entry, delivery="jobs/0/3", now=NOW)

    [contract] = plan.outcome.contracts
    assert contract.status is ContractStatus.VOID_REQUESTED
    [block] = plan.outcome.payment_blocks
    assert block.blocked and block.reason == "budget cut"
    assert block.contract_id == contract.contract_id
    assert [a.type for a in plan.outcome.audits] == [AuditType.VOID_REQUESTED]
    assert plan.entry is not None and plan.entry.contract == contract


def test_a_second_cancel_of_a_voided_contract_does_nothing() -> None:
    job = job_for()
    entry, _ = issue(job)
    void = generation.plan(cancel_for(job), entry, delivery="jobs/0/3", now=NOW)

    again = generation.plan(cancel_for(job), void.entry, delivery="jobs/0/4", now=NOW)

    assert not again.outcome and again.entry is None


def test_parties_come_from_reference_data_when_the_acceptance_has_none() -> None:
    job = job_for(parties=None)

    body = generation.contract_body(
        job, {"org-a": ORGANIZATION}.get, {"col-1": COLLABORATOR}.get
    )

    assert body.parties.organization == ORGANIZATION
    assert body.parties.collaborators[0].legal_name == COLLABORATOR.legal_name


@pytest.mark.parametrize(
    ("orgs", "collaborators"),
    [({}, {"col-1": COLLABORATOR}), ({"org-a": ORGANIZATION}, {})],
)
def test_missing_party_data_is_a_transient_error(
    orgs: dict[str, object], collaborators: dict[str, object]
) -> None:
    with pytest.raises(MissingPartyError):
        generation.contract_body(
            job_for(parties=None),
            orgs.get,  # type: ignore[arg-type]
            collaborators.get,  # type: ignore[arg-type]
        )


def test_a_dead_lettered_job_audits_the_failure_per_assignment() -> None:
    outcome = generation.dead_lettered(job_for(), "no parties", now=NOW)

    assert sorted(a.type for a in outcome.audits) == [
        AuditType.GENERATION_ATTEMPT,
        AuditType.GENERATION_FAILED,
    ]


def test_a_failed_attempt_audits_when_its_retry_falls_due() -> None:
    job = job_for().model_copy(update={"attempt": 2})
    due = datetime(2026, 3, 2, 12, 0, 1, 250000, tzinfo=UTC)

    outcome = generation.failed_attempt(
        job, "store down", now=NOW, retry_at=due, retry_in=1.25
    )

    [audit] = outcome.audits
    assert (audit.attempt, audit.outcome) == (2, "failed")
    assert audit.payload == {
        "error": "store down",
        "retry_in_seconds": "1.250",
        "retry_at": "2026-03-02T12:00:01.250000+00:00",
    }


def issue_from(job: ContractJob, delivery: str) -> tuple[RegistryEntry, Outcome]:
    body = generation.contract_body(job, lambda _: None, lambda _: None)
    return generation.issued(job, body, DOC, now=NOW, delivery=delivery)


def test_the_delivery_that_issued_replayed_sends_every_record_of_its_issue() -> None:
    job = job_for()
    entry, first = issue_from(job, "jobs/0/5")

    later = datetime(2026, 3, 2, 12, 5, tzinfo=UTC)
    replay = generation.plan(job, entry, delivery="jobs/0/5", now=later)

    assert not replay.issue and replay.entry is None
    assert replay.outcome == first


def test_another_delivery_of_the_issuing_job_only_audits_a_duplicate() -> None:
    job = job_for()
    entry, first = issue_from(job, "jobs/0/5")

    plan = generation.plan(job, entry, delivery="jobs/0/9", now=NOW)

    assert plan.outcome.contracts == first.contracts
    assert [a.outcome for a in plan.outcome.audits] == ["duplicate"]


def test_another_attempt_at_the_issuing_position_only_audits_a_duplicate() -> None:
    job = job_for()
    entry, _ = issue_from(job, "jobs/0/5")

    retried = job.model_copy(update={"attempt": 2})
    plan = generation.plan(retried, entry, delivery="jobs/0/5", now=NOW)

    assert [a.outcome for a in plan.outcome.audits] == ["duplicate"]


def test_a_replayed_issue_sends_the_contract_as_the_registry_holds_it_now() -> None:
    job = job_for()
    entry, _ = issue_from(job, "jobs/0/5")
    void = generation.plan(cancel_for(job), entry, delivery="jobs/0/6", now=NOW)
    assert void.entry is not None

    replay = generation.plan(job, void.entry, delivery="jobs/0/5", now=NOW)

    [contract] = replay.outcome.contracts
    assert contract.status is ContractStatus.VOID_REQUESTED
    assert sorted(a.type for a in replay.outcome.audits) == [
        AuditType.GENERATED,
        AuditType.GENERATION_ATTEMPT,
    ]
