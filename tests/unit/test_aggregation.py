"""The aggregation policy's windows, fed the way the intake feeds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.aggregate import policy_of, tick_interval
from contracts import aggregation
from contracts.aggregation import (
    ClosedWindow,
    InputKind,
    Shelf,
    WindowInput,
    WindowPolicy,
)
from contracts.commands import Command, bundle_job
from contracts.errors import PermanentError
from contracts.keys import contract_key
from contracts.lifecycle import AssignmentState, LedgerEntry, apply_event
from contracts.models import ContractJob, JobKind
from streams.settings import Settings
from tests.factories import TEMPLATE, TEMPLATES, event

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# Windows of 10 minutes with 2 minutes of grace; T0 (09:30) starts a window.
POLICY = WindowPolicy(size=timedelta(minutes=10), grace=timedelta(minutes=2))


def accepted(assignment_id: str, at: int, **fields: Any) -> list[WindowInput]:
    """What the intake sends the windows for one acceptance `at` minutes after T0."""
    return intake(None, event(assignment_id=assignment_id, at=at, **fields))[1]


def intake(
    before: LedgerEntry | None, incoming: Any
) -> tuple[LedgerEntry | None, list[WindowInput], tuple[ContractJob, ...]]:
    if aggregation.claims(incoming):
        incoming = aggregation.claimed(incoming, POLICY)
    decision = apply_event(before, incoming, known_templates=TEMPLATES, now=NOW)
    entry = decision.entry or before
    direct, windows = aggregation.forwarded(
        decision.entry, incoming, decision.outcome.jobs, POLICY
    )
    return entry, list(windows), direct


def feed(
    records: list[WindowInput],
    shelf: Shelf | None = None,
    closed: dict[str, ClosedWindow] | None = None,
) -> tuple[Shelf, dict[str, ClosedWindow], list[ContractJob]]:
    """Run records through one partition's windows, as the agent does."""
    shelf = shelf or Shelf()
    closed = dict(closed or {})
    jobs: list[ContractJob] = []
    for record in records:
        step = aggregation.apply(shelf, closed.get(record.group), record, POLICY.grace)
        shelf = step.shelf
        closed.update({c.group: c for c in step.closed})
        jobs.extend(step.jobs)
    return shelf, closed, jobs


def bundles(jobs: list[ContractJob]) -> set[tuple[str, tuple[str, ...]]]:
    return {(j.contract_key, j.assignment_ids) for j in jobs}


def key_of(*assignment_ids: str) -> str:
    return contract_key("org-a", "prj-1", assignment_ids, TEMPLATE)


def at(minutes: float) -> datetime:
    return datetime(2026, 3, 2, 9, 30, tzinfo=UTC) + timedelta(minutes=minutes)


def test_windows_are_aligned_on_the_epoch_and_hold_their_start_not_their_end() -> None:
    assert POLICY.start_of(at(0)) == at(0)
    assert POLICY.start_of(at(9.99)) == at(0)
    assert POLICY.start_of(at(10)) == at(10)
    assert POLICY.start_of(at(-0.01)) == at(-10)


def test_the_group_is_the_collaborator_project_and_window() -> None:
    group = POLICY.group_of("org-a", "prj-1", "col-1", at(1))

    assert group == POLICY.group_of("org-a", "prj-1", "col-1", at(9))
    assert group != POLICY.group_of("org-a", "prj-1", "col-1", at(11))
    assert group != POLICY.group_of("org-a", "prj-1", "col-2", at(1))
    assert group != POLICY.group_of("org-a", "prj-2", "col-1", at(1))
    assert group != POLICY.group_of("org-b", "prj-1", "col-1", at(1))


@pytest.mark.parametrize(
    "fields",
    [
        {"source": "frontend"},
        {"bundle_id": "b-1"},
        {"event_type": "AssignmentProposed"},
    ],
)
def test_the_policy_takes_only_backend_acceptances_without_a_bundle(
    fields: dict[str, Any],
) -> None:
    assert aggregation.claims(event())
    assert not aggregation.claims(event(**fields))


def test_an_acceptance_it_takes_is_accepted_in_the_ledger_and_sends_no_job() -> None:
    entry, [member], direct = intake(None, event(assignment_id="asg-1"))

    assert entry is not None and entry.state is AssignmentState.ACCEPTED
    assert not direct
    assert member.kind is InputKind.MEMBER
    assert member.group == POLICY.group_of("org-a", "prj-1", "col-1", at(0))
    assert member.window_end == at(10)
    assert member.job is not None and member.job.contract_key == key_of("asg-1")


def test_acceptances_in_one_window_close_as_one_bundle_when_event_time_passes() -> None:
    records = accepted("asg-2", 3) + accepted("asg-1", 0) + accepted("asg-3", 9)
    later = accepted("asg-9", 12)

    shelf, _, before = feed(records + accepted("asg-8", 11.9))
    _, closed, jobs = feed(later, shelf)

    assert before == []
    [bundle] = jobs
    assert bundle.kind is JobKind.GENERATE
    assert bundle.contract_key == key_of("asg-1", "asg-2", "asg-3")
    assert bundle.assignment_ids == ("asg-1", "asg-2", "asg-3")
    assert bundle.issued_at == at(9)
    assert set(closed[records[0].group].contract_keys.values()) == {bundle.contract_key}


def test_other_collaborators_and_windows_get_bundles_of_their_own() -> None:
    records = (
        accepted("asg-1", 0)
        + accepted("asg-2", 1, collaborator_id="col-2")
        + accepted("asg-3", 2)
        + accepted("asg-4", 10)
        + accepted("asg-9", 30)
    )

    _, _, jobs = feed(records)

    assert bundles(jobs) == {
        (key_of("asg-1", "asg-3"), ("asg-1", "asg-3")),
        (key_of("asg-2"), ("asg-2",)),
        (key_of("asg-4"), ("asg-4",)),
    }


def test_a_tick_closes_a_quiet_window_once_its_end_and_grace_have_passed() -> None:
    shelf, _, _ = feed(accepted("asg-1", 0) + accepted("asg-2", 5))

    _, _, early = feed([aggregation.tick(at(11.99))], shelf)
    after, _, due = feed([aggregation.tick(at(12))], shelf)

    assert early == []
    assert [j.assignment_ids for j in due] == [("asg-1", "asg-2")]
    assert after.windows == ()


def test_a_second_tick_issues_nothing_more() -> None:
    shelf, closed, first = feed([*accepted("asg-1", 0), aggregation.tick(at(20))])

    _, _, again = feed([aggregation.tick(at(30))], shelf, closed)

    assert len(first) == 1 and again == []


def test_a_late_acceptance_is_issued_on_its_own_and_a_repeat_issues_nothing() -> None:
    shelf, closed, _ = feed([*accepted("asg-1", 0), aggregation.tick(at(15))])

    late = accepted("asg-2", 4)
    shelf, closed, alone = feed(late, shelf, closed)
    _, _, repeated = feed(accepted("asg-1", 0) + late, shelf, closed)

    assert [j.contract_key for j in alone] == [key_of("asg-2")]
    assert repeated == []


def test_an_acceptance_of_a_window_already_past_its_grace_is_issued_at_once() -> None:
    shelf, _, _ = feed(accepted("asg-9", 40))

    _, _, jobs = feed(accepted("asg-1", 0), shelf)

    assert [j.contract_key for j in jobs] == [key_of("asg-1")]


def test_a_cancel_before_the_window_closes_takes_the_assignment_out() -> None:
    entry, records, _ = intake(None, event(assignment_id="asg-1"))
    _, cancel, direct = intake(
        entry, event("AssignmentCanceled", assignment_id="asg-1", at=2)
    )

    _, _, jobs = feed(
        records + accepted("asg-2", 1) + cancel + [aggregation.tick(at(12))]
    )

    assert [c.kind for c in cancel] == [InputKind.CANCEL]
    assert [j.kind for j in direct] == [JobKind.CANCEL]
    assert [j.assignment_ids for j in jobs] == [("asg-2",)]


def test_a_window_left_empty_by_a_cancel_issues_nothing() -> None:
    entry, records, _ = intake(None, event(assignment_id="asg-1"))
    _, cancel, _ = intake(entry, event("AssignmentCanceled", assignment_id="asg-1"))

    shelf, _, jobs = feed([*records, *cancel, aggregation.tick(at(30))])

    assert jobs == [] and shelf.windows == ()


def test_a_cancel_after_the_window_closed_sends_a_marker_under_the_bundle_key() -> None:
    entry, records, _ = intake(None, event(assignment_id="asg-1"))
    _, cancel, _ = intake(
        entry, event("AssignmentCanceled", assignment_id="asg-1", at=20)
    )

    _, _, jobs = feed(
        [*records, *accepted("asg-2", 1), aggregation.tick(at(12)), *cancel]
    )

    issued, marker = jobs
    assert marker.kind is JobKind.CANCEL
    assert marker.contract_key == issued.contract_key == key_of("asg-1", "asg-2")
    assert marker.assignment_ids == ("asg-1",)


def test_a_same_terms_acceptance_again_rejoins_its_first_window_only() -> None:
    entry, first, _ = intake(None, event(assignment_id="asg-1"))
    _, again, direct = intake(
        entry, event(assignment_id="asg-1", at=25, event_id="evt-again")
    )

    _, _, jobs = feed([*first, *again, aggregation.tick(at(60))])

    assert direct == ()
    assert [r.group for r in again] == [first[0].group]
    assert [j.assignment_ids for j in jobs] == [("asg-1",)]


def test_acceptances_naming_two_templates_get_one_bundle_per_template() -> None:
    records = accepted("asg-1", 0)
    # The ledger knows one template only; the second member is built by hand.
    member = records[0].job
    assert member is not None
    other = member.model_copy(
        update={
            "contract_template_version": "freelance-fr@2",
            "assignments": (
                member.assignments[0].model_copy(
                    update={
                        "terms": member.assignments[0].terms.model_copy(
                            update={"assignment_id": "asg-2"}
                        )
                    }
                ),
            ),
        }
    )
    second = records[0].model_copy(update={"job": other})

    _, _, jobs = feed([records[0], second, aggregation.tick(at(30))])

    assert {(j.contract_template_version, j.assignment_ids) for j in jobs} == {
        (TEMPLATE, ("asg-1",)),
        ("freelance-fr@2", ("asg-2",)),
    }


def test_a_generate_contract_naming_an_assignment_the_policy_holds_is_refused() -> None:
    entry, _, _ = intake(None, event(assignment_id="asg-1"))
    assert entry is not None
    states = {entry.scope: entry}
    command = Command.model_validate(
        {
            "command_id": "cmd-1",
            "command_type": "GenerateContract",
            "issued_at": NOW,
            "org_id": "org-a",
            "project_id": "prj-1",
            "assignment_ids": ["asg-1"],
        }
    )

    with pytest.raises(PermanentError) as refused:
        bundle_job(command, states.get)

    assert refused.value.reason_code == "REFUSED"


# Acceptances as (assignment number, collaborator, minute after T0), spread
# over a few windows, then delivered late by less than the grace, repeated.
_acceptances = st.lists(
    st.tuples(st.sampled_from(["col-1", "col-2"]), st.floats(0, 45)),
    min_size=1,
    max_size=12,
)


@given(
    acceptances=_acceptances,
    data=st.data(),
)
def test_any_delivery_order_within_the_grace_and_duplicates_give_the_same_bundles(
    acceptances: list[tuple[str, float]], data: st.DataObject
) -> None:
    members = [
        (f"asg-{n}", collaborator, minute)
        for n, (collaborator, minute) in enumerate(acceptances)
    ]
    copies = data.draw(
        st.lists(st.sampled_from(members), max_size=len(members)), label="repeats"
    )
    deliveries = []
    for assignment_id, collaborator, minute in members + copies:
        # Strictly less than the 2 minutes of grace.
        delay = data.draw(st.floats(0, 1.99), label="delay")
        tiebreak = data.draw(st.integers(0, 3), label="tiebreak")
        deliveries.append(
            (minute + delay, tiebreak, assignment_id, collaborator, minute)
        )
    deliveries.sort()

    records = [
        r
        for _, _, assignment_id, collaborator, minute in deliveries
        for r in accepted(
            assignment_id, 0, collaborator_id=collaborator, occurred_at=at(minute)
        )
    ]
    _, _, jobs = feed(records + accepted("asg-end", 24 * 60))

    expected: dict[tuple[str, datetime], set[str]] = {}
    for assignment_id, collaborator, minute in members:
        start = POLICY.start_of(at(minute))
        expected.setdefault((collaborator, start), set()).add(assignment_id)
    assert bundles(jobs) == {
        (key_of(*ids), tuple(sorted(ids))) for ids in expected.values()
    }


def test_the_policy_is_off_by_default_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    off = policy_of(Settings(_env_file=None))  # type: ignore[call-arg]
    monkeypatch.setenv("CONTRACTFLOW_AGGREGATION_WINDOW_SECONDS", "120")
    monkeypatch.setenv("CONTRACTFLOW_AGGREGATION_GRACE_SECONDS", "20")
    on = policy_of(Settings(_env_file=None))  # type: ignore[call-arg]

    assert off is None
    assert on == WindowPolicy(size=timedelta(seconds=120), grace=timedelta(seconds=20))
    assert tick_interval(on) == 5


def test_acceptances_the_policy_does_not_hold_keep_their_jobs() -> None:
    bundled = event(assignment_id="asg-1", bundle_id="b-1")
    solo = event(assignment_id="asg-2")

    for incoming in (bundled, solo):
        decision = apply_event(None, incoming, known_templates=TEMPLATES, now=NOW)
        direct, windows = aggregation.forwarded(
            decision.entry, incoming, decision.outcome.jobs, POLICY
        )
        assert direct == decision.outcome.jobs and windows == ()
