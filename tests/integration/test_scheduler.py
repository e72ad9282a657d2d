"""The scheduler's contract, held by the Redis adapter and the in-memory fake alike.

Each test runs twice: against `MemoryScheduler` and against `RedisScheduler`
on the session's redis-server, so the fake the unit tests rely on stays
honest. Time is passed in, never read from a clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from uuid import uuid4

import pytest

from streams.devstack import RedisServer, free_port
from streams.scheduler import (
    JobScheduler,
    MemoryScheduler,
    RedisScheduler,
    SchedulerUnavailableError,
)

LEASE = 30.0
Handles = Callable[[], JobScheduler]


@pytest.fixture(params=["memory", "redis"])
def handles(request: pytest.FixtureRequest) -> Handles:
    """Make handles on one scheduler; each Redis handle has its own connections."""
    if request.param == "memory":
        shared = MemoryScheduler()
        return lambda: shared
    server: RedisServer = request.getfixturevalue("redis_server")
    namespace = f"test-{uuid4().hex[:8]}"
    return lambda: RedisScheduler(server.url, namespace)


def run(handles: Handles, body: Callable[..., Awaitable[None]], count: int = 1) -> None:
    """Run `body` with `count` fresh handles on one event loop, then close them."""

    async def main() -> None:
        made = [handles() for _ in range(count)]
        try:
            await body(*made)
        finally:
            for handle in made:
                await handle.close()

    asyncio.run(main())


def ids(claimed: list) -> list[str]:
    return [c.job_id for c in claimed]


def test_a_parked_job_is_claimed_with_its_bytes_once_it_falls_due(
    handles: Handles,
) -> None:
    async def body(scheduler: JobScheduler) -> None:
        await scheduler.park(b"job-a", "k:2", due_at=100.0)

        assert await scheduler.claim(99.9, LEASE, limit=10) == []
        [claimed] = await scheduler.claim(100.0, LEASE, limit=10)
        assert (claimed.job_id, claimed.payload) == ("k:2", b"job-a")
        assert await scheduler.claim(101.0, LEASE, limit=10) == []

    run(handles, body)


def test_due_jobs_are_claimed_earliest_first_and_at_most_limit_at_a_time(
    handles: Handles,
) -> None:
    async def body(scheduler: JobScheduler) -> None:
        for n, due in enumerate([5.0, 1.0, 3.0, 2.0, 50.0]):
            await scheduler.park(b"x", f"k{n}:2", due_at=due)

        first = await scheduler.claim(10.0, LEASE, limit=2)
        second = await scheduler.claim(10.0, LEASE, limit=10)

        assert ids(first) == ["k1:2", "k3:2"]
        assert ids(second) == ["k2:2", "k0:2"]

    run(handles, body)


def test_an_acked_job_never_comes_back(handles: Handles) -> None:
    async def body(scheduler: JobScheduler) -> None:
        await scheduler.park(b"job", "k:2", due_at=1.0)
        [claimed] = await scheduler.claim(1.0, LEASE, limit=10)

        await scheduler.ack(claimed.job_id)

        assert await scheduler.claim(1.0 + 10 * LEASE, LEASE, limit=10) == []

    run(handles, body)


def test_a_job_whose_lease_ran_out_is_claimed_again(handles: Handles) -> None:
    async def body(scheduler: JobScheduler) -> None:
        await scheduler.park(b"job", "k:3", due_at=10.0)
        assert ids(await scheduler.claim(10.0, 5.0, limit=10)) == ["k:3"]

        during_lease = await scheduler.claim(14.9, 5.0, limit=10)
        after_lease = await scheduler.claim(15.0, 5.0, limit=10)

        assert during_lease == []
        assert [(c.job_id, c.payload) for c in after_lease] == [("k:3", b"job")]

    run(handles, body)


def test_parking_the_same_job_twice_keeps_one_copy_and_its_first_due_time(
    handles: Handles,
) -> None:
    async def body(scheduler: JobScheduler) -> None:
        await scheduler.park(b"first", "k:2", due_at=10.0)
        await scheduler.park(b"second", "k:2", due_at=99.0)

        claimed = await scheduler.claim(10.0, 1000.0, limit=10)

        assert [(c.job_id, c.payload) for c in claimed] == [("k:2", b"first")]
        assert await scheduler.claim(99.0, 1000.0, limit=10) == []

    run(handles, body)


def test_parking_a_job_while_it_is_claimed_does_not_hand_it_out_twice(
    handles: Handles,
) -> None:
    async def body(scheduler: JobScheduler) -> None:
        await scheduler.park(b"job", "k:2", due_at=1.0)
        await scheduler.claim(1.0, LEASE, limit=10)

        await scheduler.park(b"job", "k:2", due_at=2.0)

        assert await scheduler.claim(3.0, LEASE, limit=10) == []

    run(handles, body)


def test_concurrent_claimers_never_get_the_same_job(handles: Handles) -> None:
    jobs = {f"key-{n}:2" for n in range(120)}

    async def claim_all(scheduler: JobScheduler) -> list[str]:
        taken: list[str] = []
        while batch := await scheduler.claim(1000.0, LEASE, limit=7):
            taken.extend(ids(batch))
        return taken

    async def body(*claimers: JobScheduler) -> None:
        for n, job in enumerate(sorted(jobs)):
            await claimers[0].park(job.encode(), job, due_at=float(n))

        results = await asyncio.gather(*(claim_all(c) for c in claimers))

        every = [job for taken in results for job in taken]
        assert sorted(every) == sorted(jobs)

    run(handles, body, count=4)


def test_an_unreachable_redis_is_reported_as_a_transient_scheduler_error() -> None:
    scheduler = RedisScheduler(
        f"redis://127.0.0.1:{free_port()}/0", "nowhere", socket_timeout=0.2
    )

    async def body() -> None:
        try:
            with pytest.raises(SchedulerUnavailableError) as raised:
                await scheduler.park(b"job", "k:2", due_at=1.0)
            assert raised.value.__cause__ is not None
            assert not await scheduler.ping()
        finally:
            await scheduler.close()

    asyncio.run(body())
