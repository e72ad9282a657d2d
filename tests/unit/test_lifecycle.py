"""The intake rules, as tables of events and what they leave behind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts.errors import PermanentError, ReasonCode
from contracts.keys import contract_key
from contracts.lifecycle import (
    AssignmentState,
    BundleLink,
    Decision,
    LedgerEntry,
    apply_event,
    apply_link,
)
from contracts.models import AuditType, EventType, JobKind, NotificationCode
from tests.factories import TEMPLATE, TEMPLATES, event

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def run(*events: object) -> tuple[LedgerEntry | None, list[Decision]]:
    entry: LedgerEntry | None = None
    decisions = []
    for e in events:
        decision = apply_event(
            entry,
            e,  # type: ignore[arg-type]
            known_templates=TEMPLATES,
            now=NOW,
        )
        decisions.append(decision)
        entry = decision.entry or entry
    return entry, decisions


def test_an_acceptance_enqueues_one_generate_job_for_its_key() -> None:
    entry, [decision] = run(event("AssignmentAccepted"))

    assert entry is not None and entry.state is AssignmentState.ACCEPTED
    [job] = decision.outcome.jobs
    assert job.kind is JobKind.GENERATE
    assert job.contract_key == entry.contract_key
    assert job.assignment_ids == ("asg-1",)
    assert job.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize("event_type", ["AssignmentProposed", "AssignmentDeclined"])
def test_a_proposal_or_a_decline_enqueues_nothing(event_type: str) -> None:
    entry, [decision] = run(event(event_type))

    assert entry is not None
    assert not decision.outcome.jobs


def test_a_frontend_acceptance_is_refused_and_changes_no_state() -> None:
    entry, decisions = run(
        event("AssignmentProposed"),
        event("AssignmentAccepted", at=1, source="frontend"),
    )

    assert entry is not None and entry.state is AssignmentState.PROPOSED
    refusal = decisions[1].outcome
    assert not refusal.jobs
    assert [n.code for n in refusal.notifications] == [NotificationCode.REQUEST_REFUSED]
    assert [a.type for a in refusal.audits] == [AuditType.REQUEST_REFUSED]


def test_the_same_event_delivered_again_changes_nothing_and_emits_nothing() -> None:
    accepted = event("AssignmentAccepted")
    _, decisions = run(accepted, accepted, accepted)

    assert [d.duplicate for d in decisions] == [False, True, True]
    assert not decisions[1].outcome and not decisions[2].outcome


def test_an_older_event_delivered_late_never_rolls_the_state_back() -> None:
    entry, decisions = run(
        event("AssignmentAccepted", at=5), event("AssignmentProposed")
    )

    assert entry is not None and entry.state is AssignmentState.ACCEPTED
    assert decisions[1].stale and decisions[1].entry is None


def test_a_change_after_acceptance_is_refused_and_keeps_the_accepted_terms() -> None:
    entry, decisions = run(
        event("AssignmentAccepted"),
        event("AssignmentChanged", at=1, role="Tech lead"),
    )

    assert entry is not None and entry.terms is not None
    assert entry.terms.role == "Backend developer"
    refusal = decisions[1].outcome
    assert [n.code for n in refusal.notifications] == [NotificationCode.CHANGE_REFUSED]
    assert "amendment" in refusal.notifications[0].message
    assert not refusal.jobs


def test_a_change_before_acceptance_updates_the_proposal() -> None:
    entry, _ = run(
        event("AssignmentProposed"), event("AssignmentChanged", at=1, role="Tech lead")
    )

    assert entry is not None and entry.terms is not None
    assert entry.terms.role == "Tech lead"


def test_an_acceptance_with_a_bundle_id_waits_for_its_command() -> None:
    entry, [decision] = run(event("AssignmentAccepted", bundle_id="bundle-7"))

    assert entry is not None and entry.state is AssignmentState.ACCEPTED
    assert not decision.outcome.jobs


def test_a_cancel_after_acceptance_sends_a_cancel_marker_under_the_job_key() -> None:
    entry, decisions = run(
        event("AssignmentAccepted"), event("AssignmentCanceled", at=3, rationale="x")
    )

    assert entry is not None and entry.state is AssignmentState.CANCELED
    [marker] = decisions[1].outcome.jobs
    assert marker.kind is JobKind.CANCEL
    assert marker.contract_key == decisions[0].outcome.jobs[0].contract_key
    assert marker.reason == "x"


def test_a_cancel_delivered_before_its_acceptance_means_no_job_at_all() -> None:
    entry, decisions = run(
        event("AssignmentCanceled", at=10), event("AssignmentAccepted", at=0)
    )

    assert entry is not None and entry.state is AssignmentState.CANCELED
    assert not any(d.outcome.jobs for d in decisions)


def test_an_acceptance_after_a_cancel_is_refused() -> None:
    _, decisions = run(event("AssignmentCanceled"), event("AssignmentAccepted", at=1))

    assert not decisions[1].outcome.jobs
    assert (
        decisions[1].outcome.notifications[0].code is NotificationCode.REQUEST_REFUSED
    )


def test_the_same_terms_accepted_again_reenqueue_the_same_key() -> None:
    _, decisions = run(
        event("AssignmentAccepted"), event("AssignmentAccepted", event_id="other", at=1)
    )

    first, second = (d.outcome.jobs[0] for d in decisions)
    assert first.contract_key == second.contract_key


@pytest.mark.parametrize("repeat_bundle_id", ["bundle-7", None])
def test_a_bundled_acceptance_accepted_again_enqueues_no_job_of_its_own(
    repeat_bundle_id: str | None,
) -> None:
    entry, decisions = run(
        event("AssignmentAccepted", bundle_id="bundle-7"),
        event("AssignmentAccepted", event_id="again", at=1, bundle_id=repeat_bundle_id),
    )

    assert entry is not None and entry.state is AssignmentState.ACCEPTED
    assert entry.bundle_id == "bundle-7" and entry.last_event_id == "again"
    assert not any(d.outcome for d in decisions)


BUNDLE_KEY = contract_key("org-a", "prj-1", ["asg-1", "asg-2"], TEMPLATE)


def link(assignment_id: str = "asg-1", org_id: str = "org-a") -> BundleLink:
    return BundleLink(
        org_id=org_id,
        project_id="prj-1",
        assignment_id=assignment_id,
        contract_key=BUNDLE_KEY,
        occurred_at=NOW,
        cause="cmd-1",
        trace_id="c" * 32,
        actor_id="svc-staffing",
    )


def test_a_link_gives_a_bundled_entry_its_bundle_key_and_sends_nothing() -> None:
    entry, _ = run(event("AssignmentAccepted", bundle_id="bundle-7"))
    assert entry is not None

    decision = apply_link(entry, link())

    assert decision.entry is not None and not decision.outcome
    assert decision.entry.contract_key == BUNDLE_KEY
    assert decision.entry.state is AssignmentState.ACCEPTED
    assert decision.entry.model_dump(exclude={"contract_key"}) == entry.model_dump(
        exclude={"contract_key"}
    )


def test_a_cancel_after_the_link_sends_its_marker_to_the_bundle_key() -> None:
    entry, _ = run(event("AssignmentAccepted", bundle_id="bundle-7"))
    linked = apply_link(entry, link()).entry

    decision = apply_event(
        linked,
        event("AssignmentCanceled", at=3, rationale="client left"),
        known_templates=TEMPLATES,
        now=NOW,
    )

    [marker] = decision.outcome.jobs
    assert marker.kind is JobKind.CANCEL and marker.contract_key == BUNDLE_KEY
    assert marker.assignment_ids == ("asg-1",) and marker.reason == "client left"


def test_a_cancel_before_the_link_is_sent_again_to_the_bundle_key() -> None:
    entry, decisions = run(
        event("AssignmentAccepted", bundle_id="bundle-7"),
        event("AssignmentCanceled", event_id="cancel-1", at=3),
    )
    assert entry is not None
    [early] = decisions[1].outcome.jobs
    assert early.contract_key != BUNDLE_KEY

    decision = apply_link(entry, link())

    assert decision.entry is not None
    assert decision.entry.state is AssignmentState.CANCELED
    assert decision.entry.contract_key == BUNDLE_KEY
    [marker] = decision.outcome.jobs
    assert marker.kind is JobKind.CANCEL and marker.contract_key == BUNDLE_KEY
    assert marker.assignment_ids == ("asg-1",)
    assert marker.cause == "cancel-1" and marker.issued_at == entry.last_occurred_at


def test_a_link_delivered_again_changes_nothing_and_sends_nothing() -> None:
    entry, _ = run(
        event("AssignmentAccepted", bundle_id="bundle-7"),
        event("AssignmentCanceled", at=3),
    )
    linked = apply_link(entry, link()).entry

    again = apply_link(linked, link())

    assert again.duplicate and again.entry is None and not again.outcome


def test_a_linked_assignment_accepted_again_enqueues_nothing() -> None:
    entry, _ = run(event("AssignmentAccepted", bundle_id="bundle-7"))
    linked = apply_link(entry, link()).entry

    decision = apply_event(
        linked,
        event("AssignmentAccepted", event_id="again", at=1),
        known_templates=TEMPLATES,
        now=NOW,
    )

    assert decision.entry is not None and not decision.outcome
    assert decision.entry.contract_key == BUNDLE_KEY


@pytest.mark.parametrize(
    "events",
    [
        [],
        [event("AssignmentAccepted")],
        [event("AssignmentProposed", bundle_id="bundle-7")],
    ],
    ids=["unknown", "contracted-alone", "not-accepted"],
)
def test_a_link_for_an_assignment_outside_any_bundle_changes_nothing(
    events: list[object],
) -> None:
    entry, _ = run(*events)

    decision = apply_link(entry, link())

    assert decision.entry is None and not decision.outcome


def test_two_tenants_reusing_an_assignment_id_get_two_keys() -> None:
    _, [a] = run(event("AssignmentAccepted"))
    _, [b] = run(event("AssignmentAccepted", org_id="org-b"))

    assert a.outcome.jobs[0].contract_key != b.outcome.jobs[0].contract_key


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"contract_template_version": "nope@9"}, ReasonCode.UNKNOWN_TEMPLATE),
        ({"role": None}, ReasonCode.SCHEMA),
        (
            {"rate": {"amount": "1", "currency": "XYZ", "unit": "DAY"}},
            ReasonCode.VALIDATION,
        ),
    ],
)
def test_an_acceptance_with_bad_terms_is_a_permanent_error(
    overrides: dict[str, object], code: ReasonCode
) -> None:
    with pytest.raises(PermanentError) as caught:
        run(event("AssignmentAccepted", **overrides))

    assert caught.value.reason_code is code


def test_event_types_all_have_a_rule() -> None:
    for event_type in EventType:
        entry, _ = run(event(event_type.value))
        assert entry is not None
