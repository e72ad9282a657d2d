"""The operator's view of a timeline: one text table per assignment."""

from __future__ import annotations

from contracts.timeline import compose
from streams.timelines import format_timeline, timeline_json
from tests.factories import event


def test_each_assignment_gets_a_table_of_its_steps_warnings_and_block() -> None:
    built = compose(
        "org-a",
        "prj-1",
        "mis-1",
        [event("AssignmentProposed", at=0), event(assignment_id="asg-2", at=3)],
        [],
        [],
        [],
        [],
    )

    text = format_timeline(built)

    assert text.startswith("mission org-a/prj-1/mis-1\n")
    assert text.index("assignment asg-1") < text.index("assignment asg-2")
    rows = [line.split() for line in text.splitlines()]
    assert rows[3] == ["STEP", "STATUS", "AT", "REF"]
    assert rows[4][:3] == ["Assignment", "done", "2026-03-02T09:30:00+00:00"]
    assert ["Contract", "missing", "-", "-"] in rows
    assert text.count("warnings: none") == 2
    assert text.count("payment block: none") == 2


def test_a_mission_without_assignments_says_so() -> None:
    built = compose("org-a", "prj-1", "mis-9", [], [], [], [], [])

    assert "no assignment found" in format_timeline(built)


def test_the_json_body_has_the_documented_shape() -> None:
    built = compose("org-a", "prj-1", "mis-1", [event(at=0)], [], [], [], [])

    body = timeline_json(built)

    assert set(body) == {"org_id", "project_id", "mission_id", "assignments"}
    [row] = body["assignments"]
    assert set(row) == {"assignment_id", "steps", "warnings", "payment_block"}
    assert row["steps"][1] == {
        "step": "Acceptance",
        "status": "done",
        "at": "2026-03-02T09:30:00+00:00",
        "ref": "evt-AssignmentAccepted-0",
    }
    assert row["payment_block"] is None
