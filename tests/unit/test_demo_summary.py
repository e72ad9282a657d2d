"""What the demo concludes from the outputs it read back."""

from __future__ import annotations

from streams.demo import Tally, check, render_bar
from streams.scenario import Scenario, generate


def _scenario() -> Scenario:
    return generate(seed=5, organizations=2, projects=4, assignments=60)


def _faithful(scenario: Scenario) -> Tally:
    tally = Tally(refused=set(scenario.frontend))
    for n, triple in enumerate(sorted(scenario.expected_contracts)):
        tally.contracts[f"contract-{n}"] = (triple,)
    return tally


def test_outputs_that_match_the_scenario_raise_no_problem() -> None:
    scenario = _scenario()

    assert check(scenario, _faithful(scenario)) == []


def test_an_accepted_assignment_without_a_contract_is_a_problem() -> None:
    scenario = _scenario()
    tally = _faithful(scenario)
    tally.contracts.pop("contract-0")

    assert check(scenario, tally) == ["1 accepted assignments have no contract"]


def test_a_second_contract_for_one_assignment_is_a_problem() -> None:
    scenario = _scenario()
    tally = _faithful(scenario)
    tally.contracts["contract-extra"] = tally.contracts["contract-0"]

    assert check(scenario, tally) == [
        "1 accepted assignments have more than one contract"
    ]


def test_a_contract_for_a_never_contract_assignment_is_a_problem() -> None:
    scenario = _scenario()
    tally = _faithful(scenario)
    tally.contracts["contract-extra"] = (sorted(scenario.never_contract)[0],)

    assert check(scenario, tally) == ["1 assignments got a contract they must not have"]


def test_dead_letters_and_unrefused_frontend_acceptances_are_problems() -> None:
    scenario = generate(seed=5, assignments=400)
    tally = _faithful(scenario)
    tally.refused.clear()
    tally.dead_letters = 2

    assert check(scenario, tally) == [
        f"{len(scenario.frontend)} frontend acceptances were not refused",
        "2 records were dead-lettered",
    ]


def test_the_progress_bar_fills_in_proportion_and_never_overflows() -> None:
    assert render_bar(5, 10, width=10) == "[#####     ] 5/10 contracts"
    assert render_bar(0, 10, width=4) == "[    ] 0/10 contracts"
    assert render_bar(12, 10, width=4) == "[####] 12/10 contracts"
