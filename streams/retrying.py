"""The worker's side of retries: park failed jobs, resubmit them when due.

A job that failed transiently is parked in the scheduler before its input
counts as done. If Redis does not answer, the job is not dropped: `park`
keeps trying, and the worker reports itself not ready meanwhile. The
partition the job came from blocks until then; later records of that
partition wait, which is the price of losing nothing.

Every worker runs `resubmit_due` on a timer: it claims due jobs under a
lease, sends each back to `contract.jobs` under its contract key, waits for
the broker's ack, then acks the job in Redis. A worker that dies in between
leaves the job leased; when the lease runs out, another worker resubmits it.
A job sent twice is harmless: the registry issues a key once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from contracts.deadletters import Origin, dead_letter
from contracts.errors import PermanentError
from contracts.models import ContractJob
from contracts.outcome import Outcome
from contracts.retry import job_id
from streams.codec import Codec
from streams.emit import Emitter
from streams.scheduler import Claimed, JobScheduler, SchedulerUnavailableError
from streams.web import Readiness

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# How long to wait for Redis between two tries to park a job: short at first,
# since a Redis restart takes about a second, then no more than every 5 s.
PARK_RETRY_FIRST_SECONDS = 0.2
PARK_RETRY_MAX_SECONDS = 5.0
# A claimer has this long to put a job back on its topic before another may.
DEFAULT_LEASE_SECONDS = 30.0
# Jobs taken per claim; a tick that takes a full batch claims again at once.
CLAIM_BATCH = 100
REDIS = "redis"


def poll_interval(base_seconds: float) -> float:
    """Return how often to look for due jobs, given the first retry's delay."""
    # A fifth of the base delay keeps a retry's lateness small next to its
    # delay; the bounds keep Redis from being polled too hard or too rarely.
    return min(1.0, max(0.1, base_seconds / 5))


class Retries:
    """Parks jobs in a scheduler and puts them back on their topic when due."""

    def __init__(
        self,
        scheduler: JobScheduler,
        emitter: Emitter,
        codec: Codec,
        readiness: Readiness,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Clock = time.time,
    ) -> None:
        self._scheduler = scheduler
        self._emitter = emitter
        self._codec = codec
        self._readiness = readiness
        self._lease = lease_seconds
        self._clock = clock

    async def park(self, job: ContractJob, delay: float) -> float:
        """Park `job` to run in `delay` seconds; wait out a Redis outage.

        Return when it falls due, in seconds since the epoch.
        """
        payload, name = self._codec.encode(job), job_id(job)
        due_at = self._clock() + delay
        pause = PARK_RETRY_FIRST_SECONDS
        while True:
            try:
                await self._scheduler.park(payload, name, due_at)
            except SchedulerUnavailableError as error:
                self._readiness.degrade(REDIS)
                log.warning(
                    "cannot park job, partition blocked; retrying in %.1fs: %s "
                    "job_id=%s contract_key=%s trace_id=%s",
                    pause,
                    error.reason,
                    name,
                    job.contract_key,
                    job.trace_id,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, PARK_RETRY_MAX_SECONDS)
                continue
            self._readiness.recover(REDIS)
            return due_at

    async def resubmit_due(self) -> int:
        """Resubmit every job that fell due; return how many were claimed."""
        total = 0
        while True:
            claimed = await self._scheduler.claim(
                self._clock(), self._lease, CLAIM_BATCH
            )
            for item in claimed:
                await self._resubmit(item)
            total += len(claimed)
            if len(claimed) < CLAIM_BATCH:
                return total

    async def tick(self) -> None:
        """Run `resubmit_due` once; report, never raise, so the timer goes on."""
        try:
            count = await self.resubmit_due()
        except SchedulerUnavailableError as error:
            self._readiness.degrade(REDIS)
            log.debug("cannot claim due jobs: %s", error.reason)
            return
        except Exception:
            log.exception("resubmitting due jobs failed")
            return
        self._readiness.recover(REDIS)
        if count:
            log.debug("resubmitted due jobs count=%d", count)

    async def _resubmit(self, item: Claimed) -> None:
        try:
            job = self._codec.decode(item.payload, ContractJob)
        except PermanentError as error:
            await self._dead_letter(item, error)
        else:
            # Known shortcoming: the parked bytes are the job alone, so a
            # resubmitted job has its trace_id field but no traceparent header.
            await self._emitter.emit(Outcome(jobs=(job,)), [])
            log.debug(
                "job resubmitted job_id=%s contract_key=%s attempt=%d trace_id=%s",
                item.job_id,
                job.contract_key,
                job.attempt,
                job.trace_id,
            )
        await self._scheduler.ack(item.job_id)

    async def _dead_letter(self, item: Claimed, error: PermanentError) -> None:
        # Only bytes this module wrote are parked, so this means a bug or a
        # hand-edited Redis; the payload is kept where an operator looks.
        log.error("unreadable parked job dead-lettered job_id=%s", item.job_id)
        origin = Origin(
            topic="redis:parked",
            partition=-1,
            offset=-1,
            key=item.job_id.encode(),
            value=item.payload,
        )
        now = datetime.fromtimestamp(self._clock(), UTC)
        letter = dead_letter(origin, error, now=now)
        await self._emitter.dead_letter(letter, origin, [])
