"""A commit waits for the outputs of the inputs it covers, and only for those."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from faust.exceptions import ProducerSendError
from faust.types import TP

import streams.emit
from agents.base import run_step
from streams.emit import Emitter
from streams.transport import InFlight

JOBS = TP(topic="contract.jobs", partition=2)
OTHER = TP(topic="contract.jobs", partition=3)


def _committing(
    in_flight: InFlight, tp: TP, offset: int, seen: list[str]
) -> asyncio.Task[None]:
    """Start a commit of `offset` that notes "committed" once it may go."""

    async def commit() -> None:
        await in_flight.through(tp, offset)
        seen.append("committed")

    return asyncio.ensure_future(commit())


def test_a_commit_waits_for_outputs_up_to_its_offset_and_not_past_it() -> None:
    async def run() -> list[str]:
        loop = asyncio.get_running_loop()
        early: asyncio.Future[Any] = loop.create_future()
        late: asyncio.Future[Any] = loop.create_future()
        elsewhere: asyncio.Future[Any] = loop.create_future()
        in_flight = InFlight()
        in_flight.add(JOBS, 10, [early])
        in_flight.add(JOBS, 11, [late])
        in_flight.add(OTHER, 5, [elsewhere])
        seen: list[str] = []

        task = _committing(in_flight, JOBS, 10, seen)
        await asyncio.sleep(0.01)
        seen.append("waiting")
        early.set_result("ack")
        await asyncio.wait_for(task, 1)
        return seen

    # Neither the later offset nor another partition holds the commit back.
    assert asyncio.run(run()) == ["waiting", "committed"]


def test_a_refused_output_stops_every_commit_past_it() -> None:
    async def run() -> int:
        loop = asyncio.get_running_loop()
        refused: asyncio.Future[Any] = loop.create_future()
        refused.set_exception(RuntimeError("record too large"))
        acked: asyncio.Future[Any] = loop.create_future()
        acked.set_result("ack")
        in_flight = InFlight()
        in_flight.add(JOBS, 7, [refused])
        in_flight.add(JOBS, 8, [acked])
        failures = 0
        for offset in (7, 9):
            with pytest.raises(ProducerSendError, match="offset"):
                await in_flight.through(JOBS, offset)
            failures += 1
        return failures

    assert asyncio.run(run()) == 2


def test_acknowledged_outputs_are_not_kept() -> None:
    async def run() -> int:
        loop = asyncio.get_running_loop()
        in_flight = InFlight()
        for offset in range(100):
            output: asyncio.Future[Any] = loop.create_future()
            output.set_result("ack")
            in_flight.add(JOBS, offset, [output])
        return len(in_flight._pending[JOBS])

    assert asyncio.run(run()) == 0


# What `before_commit` reads of the current Faust event.
EVENT = SimpleNamespace(message=SimpleNamespace(tp=JOBS, offset=5))


def emitter_with(in_flight: InFlight) -> Emitter:
    """An emitter reduced to what `before_commit` uses."""
    emitter = object.__new__(Emitter)
    emitter._in_flight = in_flight
    emitter._work_slots = asyncio.Semaphore(2)
    return emitter


def test_a_commit_waits_for_work_run_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streams.emit, "current_event", lambda: EVENT)
    release = threading.Event()

    async def run() -> list[str]:
        in_flight = InFlight()
        done = await emitter_with(in_flight).before_commit(lambda: release.wait(5))
        seen = []
        commit = asyncio.ensure_future(in_flight.through(JOBS, 5))
        await asyncio.sleep(0.05)
        seen.append("committed" if commit.done() else "waiting")
        release.set()
        await commit
        seen.append("committed" if done.done() else "work pending")
        return seen

    assert asyncio.run(run()) == ["waiting", "committed"]


def test_work_that_fails_stops_the_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams.emit, "current_event", lambda: EVENT)

    def fail() -> None:
        raise OSError("disk gone")

    async def run() -> None:
        in_flight = InFlight()
        await emitter_with(in_flight).before_commit(fail)
        await in_flight.through(JOBS, 5)

    with pytest.raises(ProducerSendError, match="disk gone"):
        asyncio.run(run())


def test_outside_an_agent_work_runs_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams.emit, "current_event", lambda: None)
    ran: list[str] = []

    async def run() -> bool:
        done = await emitter_with(InFlight()).before_commit(lambda: ran.append("ran"))
        return done.done()

    assert asyncio.run(run())
    assert ran == ["ran"]


def test_work_waits_for_a_slot_when_too_much_is_pending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streams.emit, "current_event", lambda: EVENT)
    release = threading.Event()

    async def run() -> list[bool]:
        emitter = emitter_with(InFlight())
        for _ in range(2):
            await emitter.before_commit(lambda: release.wait(5))
        third = asyncio.ensure_future(emitter.before_commit(lambda: None))
        await asyncio.sleep(0.05)
        waited = [third.done()]
        release.set()
        await third
        return [*waited, third.done()]

    assert asyncio.run(run()) == [False, True]


def test_a_commit_waits_for_an_output_recorded_while_it_waits() -> None:
    # A changelog record leaves when the output it follows is acked, and is
    # recorded under the offset of the event that made the write.
    async def run() -> list[str]:
        loop = asyncio.get_running_loop()
        output: asyncio.Future[Any] = loop.create_future()
        changelog: asyncio.Future[Any] = loop.create_future()
        in_flight = InFlight()
        in_flight.add(JOBS, 12, [output])
        in_flight.add(JOBS, 13, [loop.create_future()])
        output.add_done_callback(lambda _: in_flight.add(JOBS, 12, [changelog]))
        seen: list[str] = []

        task = _committing(in_flight, JOBS, 12, seen)
        await asyncio.sleep(0.01)
        output.set_result("ack")
        await asyncio.sleep(0.01)
        seen.append("output acked")
        changelog.set_result("ack")
        await asyncio.wait_for(task, 1)
        return seen

    assert asyncio.run(run()) == ["output acked", "committed"]


def test_an_event_whose_step_is_cancelled_is_never_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Faust acks the event of an agent cancelled part way (as when the worker
    # stops); the commit must still not pass it, so it is read again.
    monkeypatch.setattr(streams.emit, "current_event", lambda: EVENT)
    message = SimpleNamespace(
        tp=JOBS,
        topic=JOBS.topic,
        partition=JOBS.partition,
        offset=5,
        key=b"k",
        value=b"v",
        headers=[],
    )

    async def run() -> None:
        in_flight = InFlight()
        started = asyncio.Event()

        async def step(*_: Any) -> None:
            started.set()
            await asyncio.Event().wait()

        event = SimpleNamespace(message=message)
        task = asyncio.ensure_future(run_step(event, step, emitter_with(in_flight)))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await in_flight.through(JOBS, 5)

    with pytest.raises(ProducerSendError, match="interrupted"):
        asyncio.run(run())
