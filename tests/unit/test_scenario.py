"""The demo's scenario generator: seeded, sized as asked, and self-consistent."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime

import pytest

from contracts.models import AssignmentEvent, CollaboratorRecord, OrganizationRecord
from streams.scenario import Scenario, generate, luhn_valid


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate(seed=11, organizations=3, projects=12, assignments=400)


def _triple(event: dict[str, object]) -> tuple[str, str, str]:
    return (str(event["org_id"]), str(event["project_id"]), str(event["assignment_id"]))


def test_the_same_seed_gives_the_same_scenario() -> None:
    first, second = generate(seed=3, assignments=150), generate(seed=3, assignments=150)

    assert json.dumps(first.events) == json.dumps(second.events)
    assert first.organizations == second.organizations
    assert first.collaborators == second.collaborators
    assert first.expected_contracts == second.expected_contracts


def test_another_seed_gives_another_scenario() -> None:
    assert (
        generate(seed=3, assignments=50).events
        != generate(seed=4, assignments=50).events
    )


def test_the_scenario_has_the_sizes_asked(scenario: Scenario) -> None:
    projects = {event["project_id"] for event in scenario.events}

    assert len(scenario.organizations) == 3
    assert len(scenario.assignments) == 400
    assert len(projects) <= 12
    assert scenario.event_count == len(scenario.events)


def test_every_assignment_is_proposed_exactly_once(scenario: Scenario) -> None:
    firsts = {e["event_id"]: e for e in scenario.events}.values()
    proposals = Counter(
        _triple(e) for e in firsts if e["event_type"] == "AssignmentProposed"
    )

    assert set(proposals) == scenario.assignments
    assert set(proposals.values()) == {1}


def test_a_duplicate_repeats_an_event_id_with_the_same_bytes(
    scenario: Scenario,
) -> None:
    by_id: dict[str, set[str]] = {}
    for event in scenario.events:
        by_id.setdefault(event["event_id"], set()).add(json.dumps(event))
    repeats = Counter(event["event_id"] for event in scenario.events)

    assert scenario.duplicates == sum(n - 1 for n in repeats.values()) > 0
    assert 3 in repeats.values()
    assert all(len(encodings) == 1 for encodings in by_id.values())


def test_a_duplicate_is_delivered_after_its_first_copy(scenario: Scenario) -> None:
    instants = [datetime.fromisoformat(e["occurred_at"]) for e in scenario.events]
    seen: set[str] = set()
    latest = instants[0]
    for event, at in zip(scenario.events, instants, strict=True):
        if event["event_id"] in seen:
            assert at <= latest
        else:
            assert at >= latest
            latest = at
        seen.add(event["event_id"])


def test_expected_and_never_sets_are_disjoint_and_cover_every_assignment(
    scenario: Scenario,
) -> None:
    every = {_triple(event) for event in scenario.events}

    assert not scenario.expected_contracts & scenario.never_contract
    assert scenario.expected_contracts | scenario.never_contract == every
    assert scenario.frontend <= scenario.never_contract


def test_only_backend_acceptances_are_expected_to_give_a_contract(
    scenario: Scenario,
) -> None:
    accepted = {
        _triple(e)
        for e in scenario.events
        if e["event_type"] == "AssignmentAccepted" and e["source"] == "backend"
    }
    frontend = {
        _triple(e)
        for e in scenario.events
        if e["event_type"] == "AssignmentAccepted" and e["source"] == "frontend"
    }

    assert accepted == scenario.expected_contracts
    assert frontend == scenario.frontend != set()


def test_every_event_is_a_valid_assignment_event(scenario: Scenario) -> None:
    for raw in scenario.events:
        event = AssignmentEvent.model_validate_json(json.dumps(raw))
        assert event.rate is not None and event.start_date and event.end_date
        assert event.end_date >= event.start_date >= date(2026, 1, 1)
        assert event.rate.amount == event.rate.amount.quantize(event.rate.amount)
        assert len(event.trace_id) == 32 and int(event.trace_id, 16) >= 0


def test_parties_are_valid_reference_records_with_valid_numbers(
    scenario: Scenario,
) -> None:
    for org in scenario.organizations:
        record = OrganizationRecord.model_validate(org)
        assert len(record.registration_id) == 9 and luhn_valid(record.registration_id)
    for collaborator in scenario.collaborators:
        person = CollaboratorRecord.model_validate(collaborator)
        assert len(person.registration_id) == 14
        assert luhn_valid(person.registration_id)
        assert "@example." in person.email


def test_about_half_of_the_acceptances_embed_a_parties_snapshot(
    scenario: Scenario,
) -> None:
    acceptances = {
        e["event_id"]: e
        for e in scenario.events
        if e["event_type"] == "AssignmentAccepted"
    }
    embedded = sum("parties" in e for e in acceptances.values())

    assert 0.35 < embedded / len(acceptances) < 0.65


def test_two_organizations_reuse_an_assignment_id(scenario: Scenario) -> None:
    orgs_by_id: dict[str, set[str]] = {}
    for org_id, _, assignment_id in scenario.assignments:
        orgs_by_id.setdefault(assignment_id, set()).add(org_id)

    assert any(len(orgs) > 1 for orgs in orgs_by_id.values())


def test_rates_are_stated_with_two_decimals_in_a_few_currencies(
    scenario: Scenario,
) -> None:
    rates = [e["rate"] for e in scenario.events]
    currencies = Counter(rate["currency"] for rate in rates)

    assert all(len(rate["amount"].partition(".")[2]) == 2 for rate in rates)
    assert set(currencies) <= {"EUR", "GBP", "CHF"}
    assert currencies.most_common(1)[0][0] == "EUR"
