"""Commands: bundles, amendments and void resolution, without a broker."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from contracts import generation
from contracts.commands import (
    Command,
    amendment_job,
    bundle_job,
    bundle_links,
    resolution_job,
)
from contracts.errors import PermanentError, ReasonCode, TransientError
from contracts.generation import RegistryEntry
from contracts.keys import scope_key
from contracts.lifecycle import LedgerEntry, apply_event, apply_link
from contracts.models import (
    AuditType,
    Contract,
    ContractJob,
    ContractStatus,
    Document,
    JobKind,
)
from tests.factories import TEMPLATES, event

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DOC = Document(uri="file:///x", sha256="cd" * 32, media_type="application/pdf", size=1)


def ledger(
    *assignment_ids: str, bundle_id: str | None = "b-1"
) -> dict[str, LedgerEntry]:
    entries = {}
    for n, assignment_id in enumerate(assignment_ids):
        decision = apply_event(
            None,
            event(assignment_id=assignment_id, bundle_id=bundle_id, at=n),
            known_templates=TEMPLATES,
            now=NOW,
        )
        assert decision.entry is not None
        entries[decision.entry.scope] = decision.entry
    return entries


def command(**fields: Any) -> Command:
    base = {
        "command_id": "cmd-1",
        "command_type": "GenerateContract",
        "issued_at": "2026-03-02T10:00:00+00:00",
        "trace_id": "t" * 32,
        "actor_id": "svc-staffing",
        "org_id": "org-a",
        "project_id": "prj-1",
    }
    return Command.model_validate({**base, **fields})


def issue(job: ContractJob) -> tuple[RegistryEntry, Contract]:
    body = generation.contract_body(job, lambda _: None, lambda _: None)
    entry, outcome = generation.issued(job, body, DOC, now=NOW)
    return entry, outcome.contracts[0]


def test_a_bundle_in_any_order_and_repeated_maps_to_one_key() -> None:
    states = ledger("asg-1", "asg-2").get

    one = bundle_job(command(assignment_ids=["asg-2", "asg-1"]), states)
    two = bundle_job(command(assignment_ids=["asg-1", "asg-2", "asg-1"]), states)

    assert one.contract_key == two.contract_key
    assert one.assignment_ids == ("asg-1", "asg-2")
    assert len(two.assignments) == 2


def test_a_bundle_links_each_of_its_assignments_to_its_key() -> None:
    cmd = command(assignment_ids=["asg-2", "asg-1", "asg-2"])
    job = bundle_job(cmd, ledger("asg-1", "asg-2").get)

    links = bundle_links(job, cmd)

    assert [link.assignment_id for link in links] == ["asg-1", "asg-2"]
    assert {link.contract_key for link in links} == {job.contract_key}
    assert {(link.org_id, link.project_id) for link in links} == {("org-a", "prj-1")}
    assert {link.cause for link in links} == {"cmd-1"}


def test_a_cancel_in_an_issued_linked_bundle_voids_it_and_blocks_payment() -> None:
    states = ledger("asg-1", "asg-2")
    cmd = command(assignment_ids=["asg-1", "asg-2"])
    job = bundle_job(cmd, states.get)
    registry, _ = issue(job)
    for link in bundle_links(job, cmd):
        scope = scope_key(link.org_id, link.project_id, link.assignment_id)
        linked = apply_link(states[scope], link).entry
        assert linked is not None
        states[scope] = linked

    canceled = apply_event(
        states[scope_key("org-a", "prj-1", "asg-2")],
        event("AssignmentCanceled", assignment_id="asg-2", at=9),
        known_templates=TEMPLATES,
        now=NOW,
    )
    [marker] = canceled.outcome.jobs
    plan = generation.plan(marker, registry, delivery="jobs/0/9", now=NOW)

    [voided] = plan.outcome.contracts
    assert voided.contract_key == job.contract_key
    assert voided.status is ContractStatus.VOID_REQUESTED
    blocked = {b.assignment_id for b in plan.outcome.payment_blocks if b.blocked}
    assert "asg-2" in blocked


def test_a_bundle_writes_one_audit_record_per_assignment() -> None:
    job = bundle_job(
        command(assignment_ids=["asg-1", "asg-2"]), ledger("asg-1", "asg-2").get
    )

    _, outcome = generation.issued(
        job, generation.contract_body(job, lambda _: None, lambda _: None), DOC, now=NOW
    )

    generated = [a for a in outcome.audits if a.type is AuditType.GENERATED]
    assert sorted(a.assignment_id for a in generated) == ["asg-1", "asg-2"]


def test_a_bundle_mixing_tenants_is_a_tenant_mismatch() -> None:
    mixed = command(
        assignment_ids=[
            "asg-1",
            {"assignment_id": "asg-2", "org_id": "org-b", "project_id": "prj-1"},
        ]
    )

    with pytest.raises(PermanentError) as caught:
        bundle_job(mixed, ledger("asg-1", "asg-2").get)

    assert caught.value.reason_code is ReasonCode.TENANT_MISMATCH


def test_a_bundle_naming_an_assignment_issued_alone_is_refused() -> None:
    states = ledger("asg-1", bundle_id=None).get

    with pytest.raises(PermanentError) as caught:
        bundle_job(command(assignment_ids=["asg-1"]), states)

    assert caught.value.reason_code is ReasonCode.REFUSED


def test_a_bundle_naming_an_assignment_already_in_another_bundle_is_refused() -> None:
    states = ledger("asg-1", "asg-2", "asg-3")
    first = command(assignment_ids=["asg-1", "asg-2"])
    job = bundle_job(first, states.get)
    for link in bundle_links(job, first):
        scope = scope_key(link.org_id, link.project_id, link.assignment_id)
        linked = apply_link(states[scope], link).entry
        assert linked is not None
        states[scope] = linked

    again = bundle_job(command(assignment_ids=["asg-2", "asg-1"]), states.get)
    with pytest.raises(PermanentError) as caught:
        bundle_job(command(assignment_ids=["asg-2", "asg-3"]), states.get)

    assert again.contract_key == job.contract_key
    assert caught.value.reason_code is ReasonCode.REFUSED
    assert "asg-2" in caught.value.reason and job.contract_key in caught.value.reason


def test_a_bundle_naming_an_assignment_not_yet_accepted_waits() -> None:
    with pytest.raises(TransientError):
        bundle_job(command(assignment_ids=["asg-9"]), ledger("asg-1").get)


def amend(base: Contract, rate: str = "480.00", command_id: str = "cmd-2") -> Command:
    return command(
        command_id=command_id,
        command_type="RequestAmendment",
        contract_id=base.contract_id,
        reason="rate renegotiated",
        changes={
            "asg-1": {
                "rate": {"amount": rate, "currency": "EUR", "unit": "DAY"},
                "end_date": "2026-07-31",
            }
        },
    )


def solo_contract() -> tuple[RegistryEntry, Contract]:
    [job] = apply_event(None, event(), known_templates=TEMPLATES, now=NOW).outcome.jobs
    return issue(job)


def test_an_amendment_is_a_new_key_superseding_its_base_with_changed_terms() -> None:
    _, base = solo_contract()

    job, audits = amendment_job(amend(base), base, TEMPLATES)

    assert job.amendment_sequence == 1
    assert job.supersedes_contract_id == base.contract_id
    assert job.contract_key != base.contract_key
    [snapshot] = job.assignments
    assert snapshot.terms.rate.amount == Decimal("480.00")
    assert snapshot.terms.end_date == date(2026, 7, 31)
    assert snapshot.terms.role == base.terms[0].role
    assert [a.type for a in audits.audits] == [AuditType.AMENDMENT_REQUESTED]


def test_an_amendment_chain_of_three_keeps_every_link() -> None:
    _, contract = solo_contract()
    chain = [contract]
    for n in range(3):
        job, _ = amendment_job(amend(chain[-1], f"{500 + n}.00"), chain[-1], TEMPLATES)
        chain.append(issue(job)[1])

    assert [c.amendment_sequence for c in chain] == [0, 1, 2, 3]
    assert [c.supersedes_contract_id for c in chain[1:]] == [
        c.contract_id for c in chain[:-1]
    ]
    assert len({c.contract_id for c in chain}) == 4


def test_the_same_amendment_twice_is_issued_once() -> None:
    _, base = solo_contract()
    job, _ = amendment_job(amend(base), base, TEMPLATES)
    entry, _ = issue(job)

    again, _ = amendment_job(amend(base, command_id="cmd-3"), base, TEMPLATES)
    plan = generation.plan(again, entry, delivery="jobs/0/9", now=NOW)

    assert again.contract_key == job.contract_key
    assert plan.label == "duplicate" and not plan.issue


def test_a_different_amendment_of_a_superseded_contract_is_refused() -> None:
    _, base = solo_contract()
    first, _ = amendment_job(amend(base, "480.00"), base, TEMPLATES)
    entry, _ = issue(first)

    second, _ = amendment_job(amend(base, "999.00", "cmd-9"), base, TEMPLATES)
    plan = generation.plan(second, entry, delivery="jobs/0/9", now=NOW)

    assert plan.refusal is not None and not plan.issue
    assert not plan.outcome.contracts


def test_an_amendment_of_another_tenants_contract_reads_as_unknown() -> None:
    _, base = solo_contract()

    with pytest.raises(TransientError):
        amendment_job(
            amend(base).model_copy(update={"org_id": "org-b"}), base, TEMPLATES
        )


def test_a_void_resolved_as_voided_lifts_the_payment_block() -> None:
    entry, base = solo_contract()
    [solo] = apply_event(None, event(), known_templates=TEMPLATES, now=NOW).outcome.jobs
    cancel = solo.model_copy(update={"kind": JobKind.CANCEL, "cause": "evt-c"})
    void = generation.plan(cancel, entry, delivery="jobs/0/2", now=NOW)

    resolve = resolution_job(
        command(
            command_type="ResolveVoid",
            contract_id=base.contract_id,
            resolution="VOIDED",
        ),
        void.outcome.contracts[0],
    )
    plan = generation.plan(resolve, void.entry, delivery="jobs/0/3", now=NOW)

    [contract] = plan.outcome.contracts
    assert contract.status is ContractStatus.VOIDED
    [block] = plan.outcome.payment_blocks
    assert not block.blocked and block.resolved_at == NOW
    assert [a.type for a in plan.outcome.audits] == [AuditType.VOID_RESOLVED]


def test_a_void_reinstated_returns_the_contract_to_issued() -> None:
    entry, base = solo_contract()
    [solo] = apply_event(None, event(), known_templates=TEMPLATES, now=NOW).outcome.jobs
    void = generation.plan(
        solo.model_copy(update={"kind": JobKind.CANCEL}),
        entry,
        delivery="j/0/2",
        now=NOW,
    )
    resolve = resolution_job(
        command(
            command_type="ResolveVoid",
            contract_id=base.contract_id,
            resolution="REINSTATED",
        ),
        base,
    )

    plan = generation.plan(resolve, void.entry, delivery="j/0/3", now=NOW)

    assert plan.outcome.contracts[0].status is ContractStatus.ISSUED


def test_resolving_a_contract_without_a_void_is_refused() -> None:
    entry, base = solo_contract()
    resolve = resolution_job(
        command(
            command_type="ResolveVoid",
            contract_id=base.contract_id,
            resolution="VOIDED",
        ),
        base,
    )

    plan = generation.plan(resolve, entry, delivery="j/0/3", now=NOW)

    assert plan.refusal is not None and not plan.outcome.contracts
