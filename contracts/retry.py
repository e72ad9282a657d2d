"""When a failed job is tried again, and when it is given up on.

Attempts are numbered from 1: attempt 1 is the job's first run. The delay
before the run that follows a failed attempt n is drawn uniformly from
[0, min(cap, base * 2**(n - 1))] ("full jitter"), so the first retry waits at
most `base`, the next at most twice that, and so on up to `cap`. Spreading
retries over the whole interval keeps workers that failed together (a party
record late for a whole batch) from coming back together.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from contracts.errors import (
    ContractflowError,
    MissingPartyError,
    ReasonCode,
    TransientError,
)
from contracts.models import ContractJob

Rng = Callable[[], float]

# 2.0 ** 1023 is the largest power of two a float holds; beyond it the
# ceiling is `cap` anyway, and an int power would overflow the float product.
_MAX_EXPONENT = 1023


def backoff_delay(attempt: int, *, base: float, cap: float, rng: Rng) -> float:
    """Return the jittered delay before retrying after failed `attempt` (from 1)."""
    if attempt < 1:
        raise ValueError(f"attempts are numbered from 1, not {attempt}")
    exponent = min(attempt - 1, _MAX_EXPONENT)
    ceiling = min(cap, base * 2.0**exponent)
    # Clamped so that a generator slightly outside [0, 1] cannot break the bound.
    return ceiling * min(max(rng(), 0.0), 1.0)


@dataclass(frozen=True)
class Retry:
    """Run the job again after `delay` seconds."""

    delay: float


@dataclass(frozen=True)
class GiveUp:
    """Dead-letter the job with `reason_code`."""

    reason_code: ReasonCode


Step = Retry | GiveUp


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, for at most `max_attempts` runs."""

    base: float
    cap: float
    max_attempts: int
    rng: Rng = field(default=random.random, compare=False)

    def next_step(self, attempt: int, error: ContractflowError) -> Step:
        """Decide what follows attempt number `attempt`, which failed with `error`."""
        # Only an error that says a later run may succeed is worth waiting for.
        if not isinstance(error, TransientError):
            return GiveUp(error.reason_code)
        if attempt >= self.max_attempts:
            if isinstance(error, MissingPartyError):
                return GiveUp(ReasonCode.MISSING_PARTY)
            return GiveUp(ReasonCode.EXHAUSTED)
        return Retry(backoff_delay(attempt, base=self.base, cap=self.cap, rng=self.rng))


def next_attempt(job: ContractJob) -> ContractJob:
    """Return the job's next attempt: same key, issue time and first attempt."""
    return job.model_copy(update={"attempt": job.attempt + 1})


def job_id(job: ContractJob) -> str:
    """Name one attempt of a job, so that parking it twice stores it once."""
    return f"{job.contract_key}:{job.attempt}"


def redriven(job: ContractJob, *, letter: str) -> ContractJob:
    """Return a dead-lettered job as a fresh first attempt, redriven from `letter`.

    The cause names the dead letter, so the audits of the new attempts never
    overwrite those of the attempts that led to it, while redriving the same
    letter twice writes the same records again.
    """
    return job.model_copy(update={"attempt": 1, "cause": f"{job.cause}#{letter}"})
