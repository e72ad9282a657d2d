"""When a failed job is retried, after how long, and when it is given up on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.errors import (
    ContractflowError,
    MissingPartyError,
    PermanentError,
    ReasonCode,
    SchemaError,
    TransientError,
)
from contracts.lifecycle import apply_event
from contracts.models import ContractJob
from contracts.retry import (
    GiveUp,
    Retry,
    RetryPolicy,
    backoff_delay,
    job_id,
    next_attempt,
    redriven,
)
from tests.factories import TEMPLATES, event

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def highest() -> float:
    return 1.0


def policy(max_attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(base=1.0, cap=10.0, max_attempts=max_attempts, rng=highest)


def job() -> ContractJob:
    decision = apply_event(
        None, event("AssignmentAccepted"), known_templates=TEMPLATES, now=NOW
    )
    [made] = decision.outcome.jobs
    return made


@pytest.mark.parametrize(
    ("attempt", "error", "expected"),
    [
        (1, MissingPartyError("no org"), Retry(1.0)),
        (2, MissingPartyError("no org"), Retry(2.0)),
        (3, TransientError("disk full"), Retry(4.0)),
        (4, MissingPartyError("no org"), GiveUp(ReasonCode.MISSING_PARTY)),
        (4, TransientError("disk full"), GiveUp(ReasonCode.EXHAUSTED)),
        (9, TransientError("disk full"), GiveUp(ReasonCode.EXHAUSTED)),
        (1, SchemaError("bad shape"), GiveUp(ReasonCode.SCHEMA)),
        (
            1,
            PermanentError("no such template", reason_code=ReasonCode.UNKNOWN_TEMPLATE),
            GiveUp(ReasonCode.UNKNOWN_TEMPLATE),
        ),
        (1, ContractflowError("neither kind"), GiveUp(ReasonCode.VALIDATION)),
    ],
)
def test_the_policy_retries_transient_errors_until_the_last_attempt_only(
    attempt: int, error: ContractflowError, expected: Retry | GiveUp
) -> None:
    assert policy().next_step(attempt, error) == expected


def test_a_single_allowed_attempt_gives_up_after_the_first_failure() -> None:
    step = policy(max_attempts=1).next_step(1, MissingPartyError("no collaborator"))

    assert step == GiveUp(ReasonCode.MISSING_PARTY)


def test_the_delay_ceiling_doubles_from_base_and_stops_at_the_cap() -> None:
    ceilings = [backoff_delay(n, base=0.5, cap=3.0, rng=highest) for n in range(1, 7)]

    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_a_delay_is_the_drawn_fraction_of_its_ceiling() -> None:
    assert backoff_delay(3, base=1.0, cap=100.0, rng=lambda: 0.25) == 1.0
    assert backoff_delay(3, base=1.0, cap=100.0, rng=lambda: 0.0) == 0.0


def test_an_attempt_number_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="numbered from 1"):
        backoff_delay(0, base=1.0, cap=2.0, rng=highest)


@given(
    attempt=st.integers(min_value=1, max_value=5000),
    base=st.floats(min_value=1e-6, max_value=1e6),
    cap=st.floats(min_value=1e-6, max_value=1e9),
    draw=st.floats(min_value=0.0, max_value=1.0),
)
def test_every_delay_lies_between_zero_and_the_capped_exponential_ceiling(
    attempt: int, base: float, cap: float, draw: float
) -> None:
    delay = backoff_delay(attempt, base=base, cap=cap, rng=lambda: draw)

    exponential = base * 2.0 ** min(attempt - 1, 1023)
    assert 0.0 <= delay <= min(cap, exponential)


@given(draw=st.floats(allow_nan=False))
def test_a_generator_outside_the_unit_interval_still_gives_a_bounded_delay(
    draw: float,
) -> None:
    delay = backoff_delay(2, base=1.0, cap=5.0, rng=lambda: draw)

    assert 0.0 <= delay <= 2.0


def test_the_next_attempt_keeps_the_key_issue_time_and_first_attempt() -> None:
    first = job()

    second = next_attempt(first)

    assert second.attempt == first.attempt + 1 == 2
    assert second.contract_key == first.contract_key
    assert second.issued_at == first.issued_at
    assert second.first_attempt_at == first.first_attempt_at
    assert second.cause == first.cause


def test_each_attempt_of_a_job_has_its_own_id() -> None:
    first = job()

    assert job_id(first) != job_id(next_attempt(first))
    assert job_id(first) == job_id(first.model_copy())


def test_a_redriven_job_starts_over_at_attempt_one_under_a_cause_of_its_own() -> None:
    last = next_attempt(next_attempt(job()))

    again = redriven(last, letter="dlq/2/15")

    assert again.attempt == 1
    assert again.cause != last.cause
    assert again == redriven(last, letter="dlq/2/15")
    assert again.contract_key == last.contract_key
