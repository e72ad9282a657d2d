"""Composing a mission's timeline from the records its topics hold."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contracts.keys import contract_id, contract_key
from contracts.models import (
    AssignmentEvent,
    Contract,
    ContractParties,
    ContractStatus,
    Document,
    NamedCollaborator,
    Notification,
    NotificationCode,
    PaymentBlock,
    Severity,
    Terms,
)
from contracts.timeline import FactEvent, StepName, StepStatus, Timeline, compose
from tests.factories import COLLABORATOR, ORGANIZATION, T0, TEMPLATE, event

MISSION = ("org-a", "prj-1", "mis-1")


def fact(event_type: str, *, at: int, **overrides: Any) -> FactEvent:
    fields: dict[str, Any] = {
        "event_id": f"fact-{event_type}-{at}",
        "event_type": event_type,
        "occurred_at": T0 + timedelta(minutes=at),
        "org_id": "org-a",
        "project_id": "prj-1",
        "mission_id": "mis-1",
        "assignment_id": "asg-1",
        **overrides,
    }
    return FactEvent.model_validate(fields)


def contract(
    assignment_id: str = "asg-1",
    *,
    status: ContractStatus = ContractStatus.ISSUED,
    sequence: int = 0,
    org_id: str = "org-a",
) -> Contract:
    key = contract_key(org_id, "prj-1", [assignment_id], TEMPLATE, sequence)
    terms = event(assignment_id=assignment_id)
    return Contract(
        contract_id=contract_id(key),
        contract_key=key,
        org_id=org_id,
        project_id="prj-1",
        assignment_ids=(assignment_id,),
        parties=ContractParties(
            organization=ORGANIZATION,
            collaborators=(
                NamedCollaborator(collaborator_id="col-1", **COLLABORATOR.model_dump()),
            ),
        ),
        terms=(
            Terms(
                assignment_id=assignment_id,
                mission_id="mis-1",
                collaborator_id="col-1",
                role=terms.role or "",
                rate=terms.rate,
                start_date=terms.start_date,
                end_date=terms.end_date,
            ),
        ),
        contract_template_version=TEMPLATE,
        amendment_sequence=sequence,
        supersedes_contract_id=None,
        document=Document(
            uri="file:///c.pdf", sha256="ab" * 32, media_type="application/pdf", size=9
        ),
        trace_id="",
        issued_at=T0 + timedelta(minutes=5 + sequence),
        status=status,
    )


def block(issued: Contract, *, blocked: bool = True) -> PaymentBlock:
    return PaymentBlock(
        scope="org-a/prj-1/asg-1",
        org_id="org-a",
        project_id="prj-1",
        assignment_id="asg-1",
        contract_id=issued.contract_id,
        blocked=blocked,
        reason="assignment canceled",
        since=T0 + timedelta(minutes=30),
    )


def warning(assignment_id: str = "asg-1", *, org_id: str = "org-a") -> Notification:
    return Notification(
        notification_id=f"note-{org_id}-{assignment_id}",
        code=NotificationCode.EXPECTED_WARNING,
        severity=Severity.WARNING,
        org_id=org_id,
        project_id="prj-1",
        mission_id="mis-1",
        assignment_id=assignment_id,
        message="no contract yet",
        occurred_at=T0 + timedelta(hours=1),
    )


def timeline(
    events: list[AssignmentEvent] = [],  # noqa: B006 - never mutated
    contracts: list[Contract] = [],  # noqa: B006
    facts: list[FactEvent] = [],  # noqa: B006
    blocks: list[PaymentBlock] = [],  # noqa: B006
    notes: list[Notification] = [],  # noqa: B006
) -> Timeline:
    return compose(*MISSION, events, contracts, facts, blocks, notes)


def statuses(built: Timeline, assignment_id: str = "asg-1") -> dict[str, str]:
    [row] = [a for a in built.assignments if a.assignment_id == assignment_id]
    return {step.step.value: step.status.value for step in row.steps}


FULL_EVENTS = [
    event("AssignmentProposed", at=0),
    event("AssignmentAccepted", at=1),
    event("AssignmentAccepted", at=2, assignment_id="asg-2"),
    event("AssignmentCanceled", at=3, assignment_id="asg-2"),
]
FULL_FACTS = [
    fact("ExecutionStarted", at=10),
    fact("ExecutionCompleted", at=20),
    fact("InvoiceIssued", at=21, amount={"amount": "9000.00", "currency": "EUR"}),
    fact("InvoiceIssued", at=22, assignment_id="asg-2"),
    fact("PaymentMade", at=30, amount={"amount": "9000.00", "currency": "EUR"}),
]
FULL_NOTES = [warning("asg-1"), warning("asg-2")]


def test_every_step_of_a_paid_assignment_is_done_in_order_with_its_record() -> None:
    issued = contract()

    built = timeline(FULL_EVENTS, [issued], FULL_FACTS)

    steps = built.assignments[0].steps
    assert [s.step for s in steps] == list(StepName)
    assert {s.status for s in steps} == {StepStatus.DONE}
    assert [s.ref for s in steps] == [
        "evt-AssignmentProposed-0",
        "evt-AssignmentAccepted-1",
        issued.contract_id,
        "fact-ExecutionStarted-10",
        "fact-InvoiceIssued-21",
        "fact-PaymentMade-30",
    ]
    assert steps[0].at == T0 and steps[5].at == T0 + timedelta(minutes=30)


@given(
    order=st.permutations(range(len(FULL_EVENTS + FULL_FACTS + FULL_NOTES))),
    repeats=st.lists(
        st.integers(0, len(FULL_EVENTS + FULL_FACTS + FULL_NOTES) - 1), max_size=6
    ),
)
def test_shuffled_and_repeated_delivery_gives_the_same_timeline(
    order: list[int], repeats: list[int]
) -> None:
    records: list[Any] = [*FULL_EVENTS, *FULL_FACTS, *FULL_NOTES]
    delivered = [records[i] for i in order] + [records[i] for i in repeats]
    issued = [contract(), contract(), contract("asg-2")]

    shuffled = timeline(
        [r for r in delivered if isinstance(r, AssignmentEvent)],
        issued,
        [r for r in delivered if isinstance(r, FactEvent)],
        [],
        [r for r in delivered if isinstance(r, Notification)],
    )

    assert shuffled == timeline(FULL_EVENTS, issued[1:], FULL_FACTS, [], FULL_NOTES)
    assert [len(a.warnings) for a in shuffled.assignments] == [1, 1]


def test_steps_without_records_are_missing() -> None:
    built = timeline([event("AssignmentProposed", at=0)])

    assert statuses(built) == {
        "Assignment": "done",
        "Acceptance": "missing",
        "Contract": "missing",
        "Execution": "missing",
        "Invoice": "missing",
        "Payment": "missing",
    }
    assert built.assignments[0].steps[1].at is None
    assert built.assignments[0].steps[1].ref is None


def test_an_assignment_known_only_from_its_facts_shows_its_own_steps_missing() -> None:
    built = timeline(facts=[fact("InvoiceIssued", at=5)])

    assert statuses(built)["Assignment"] == "missing"
    assert statuses(built)["Invoice"] == "done"


def test_frontend_acceptances_and_acceptances_after_a_decline_do_not_count() -> None:
    built = timeline(
        [
            event("AssignmentAccepted", at=0, source="frontend"),
            event("AssignmentDeclined", at=1),
            event("AssignmentAccepted", at=2),
        ]
    )

    assert statuses(built)["Acceptance"] == "missing"


def test_a_void_requested_contract_is_void_and_its_payment_blocked() -> None:
    voided = contract(status=ContractStatus.VOID_REQUESTED)

    built = timeline(FULL_EVENTS[:2], [contract(), voided], FULL_FACTS, [block(voided)])

    row = built.assignments[0]
    assert statuses(built)["Contract"] == "void"
    assert statuses(built)["Payment"] == "blocked"
    assert row.steps[5].ref == voided.contract_id
    assert row.payment_block == block(voided)


def test_a_void_without_an_active_block_leaves_payment_to_the_facts() -> None:
    voided = contract(status=ContractStatus.VOIDED)
    resolved = block(voided, blocked=False)

    built = timeline(FULL_EVENTS[:2], [voided], [], [block(voided), resolved])

    assert statuses(built)["Contract"] == "void"
    assert statuses(built)["Payment"] == "missing"
    assert built.assignments[0].payment_block is None


def test_a_reinstated_contract_is_done_again() -> None:
    built = timeline(
        FULL_EVENTS[:2],
        [contract(), contract(status=ContractStatus.VOID_REQUESTED), contract()],
    )

    assert statuses(built)["Contract"] == "done"


def test_the_contract_step_shows_the_latest_amendment_of_the_chain() -> None:
    amended = contract(sequence=1)

    built = timeline(FULL_EVENTS[:2], [amended, contract()])

    assert built.assignments[0].steps[2].ref == amended.contract_id


def test_records_of_other_tenants_and_missions_are_ignored() -> None:
    elsewhere: list[dict[str, str]] = [
        {"org_id": "org-b"},
        {"project_id": "prj-2"},
        {"mission_id": "mis-2"},
    ]
    foreign_events = [
        event(at=0, event_id=f"x{i}", **o) for i, o in enumerate(elsewhere)
    ]
    foreign_facts = [fact("PaymentMade", at=9, **o) for o in elsewhere]
    foreign = contract(org_id="org-b")

    built = timeline(
        [event("AssignmentProposed", at=0), *foreign_events],
        [foreign],
        foreign_facts,
        [block(foreign).model_copy(update={"org_id": "org-b"})],
        [warning(org_id="org-b")],
    )

    [row] = built.assignments
    assert statuses(built) == statuses(timeline([event("AssignmentProposed")]))
    assert row.warnings == () and row.payment_block is None


def test_ids_are_compared_in_canonical_form() -> None:
    upper = "9B0C6F3E-3D1E-4A51-9A57-0D3F3C6F1A01"

    built = compose(
        "org-a",
        "prj-1",
        upper,
        [event(mission_id=upper.lower())],
        [],
        [],
        [],
        [],
    )

    assert len(built.assignments) == 1


def test_a_mission_without_records_has_no_assignments() -> None:
    assert timeline().assignments == ()
