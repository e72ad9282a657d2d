"""Table writes and steps that wait for the outputs of their event."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from faust.exceptions import ProducerSendError
from faust.types import TP

import tables.typed
from contracts.models import Record
from streams.emit import after_acks
from streams.outputs import Outputs
from streams.transport import InFlight
from tables.typed import ChangelogSender, TypedTable

JOBS = TP(topic="jobs", partition=3)


class Note(Record):
    text: str


@dataclass
class _Message:
    tp: TP
    partition: int
    offset: int = 41


@dataclass
class _Event:
    message: _Message


class FakeTable:
    """The two parts of a Faust table a held write touches, and its reads."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog: list[tuple[int, bytes, bytes]] = []

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def send_changelog(self, partition: int, key: bytes, value: bytes) -> None:
        self.changelog.append((partition, key, value))

    def __len__(self) -> int:
        return len(self.data)


@pytest.fixture
def in_event(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    event = _Event(_Message(JOBS, 3))
    monkeypatch.setattr(tables.typed, "current_event", lambda: event)
    yield


def keys(table: FakeTable) -> list[bytes]:
    return [key for _, key, _ in table.changelog]


def held_table() -> tuple[FakeTable, TypedTable[Note]]:
    fake = FakeTable()
    return fake, TypedTable(fake, Note)


def settled_after(outputs: list[asyncio.Future[Any]]) -> list[str]:
    """What a step started by `after_acks` on `outputs` has done so far."""
    ran: list[str] = []

    async def step() -> None:
        ran.append("settled")

    after_acks(outputs, step)
    return ran


def run(body: Any) -> None:
    async def main() -> None:
        await body()

    asyncio.run(main())


@pytest.mark.usefixtures("in_event")
def test_a_write_is_read_at_once_but_logged_only_once_its_outputs_are_acked() -> None:
    async def body() -> None:
        fake, table = held_table()
        outputs: list[asyncio.Future[Any]] = [asyncio.Future(), asyncio.Future()]

        table.put("k", Note(text="one"), after=outputs)

        assert table.get("k") == Note(text="one")
        outputs[0].set_result(None)
        await asyncio.sleep(0)
        assert fake.changelog == []
        outputs[1].set_result(None)
        await asyncio.sleep(0)
        assert fake.changelog == [(3, b"k", b'{"text":"one"}')]

    run(body)


@pytest.mark.usefixtures("in_event")
def test_writes_reach_the_changelog_in_the_order_they_were_made() -> None:
    async def body() -> None:
        fake, table = held_table()
        first: asyncio.Future[Any] = asyncio.Future()
        second: asyncio.Future[Any] = asyncio.Future()

        table.put("k", Note(text="one"), after=[first])
        table.put("k", Note(text="two"), after=[second])
        second.set_result(None)
        await asyncio.sleep(0)
        assert fake.changelog == []
        first.set_result(None)
        await asyncio.sleep(0)

        assert [value for _, _, value in fake.changelog] == [
            b'{"text":"one"}',
            b'{"text":"two"}',
        ]

    run(body)


@pytest.mark.usefixtures("in_event")
def test_a_refused_output_keeps_its_write_and_the_later_ones_off_the_log() -> None:
    async def body() -> None:
        fake, table = held_table()
        refused: asyncio.Future[Any] = asyncio.Future()

        table.put("a", Note(text="one"), after=[refused])
        table.put("b", Note(text="two"))
        refused.set_exception(RuntimeError("not acked"))
        await asyncio.sleep(0)

        assert fake.changelog == []

    run(body)


@pytest.mark.usefixtures("in_event")
def test_a_write_without_outputs_is_logged_at_once() -> None:
    fake = FakeTable()

    TypedTable(fake, Note).put("k", Note(text="one"))

    assert keys(fake) == [b"k"]


def test_a_step_after_acks_starts_only_when_every_output_is_acked() -> None:
    async def body() -> None:
        outputs: list[asyncio.Future[Any]] = [asyncio.Future(), asyncio.Future()]
        ran = settled_after(outputs)
        outputs[0].set_result(None)
        await asyncio.sleep(0.01)
        assert ran == []
        outputs[1].set_result(None)
        await asyncio.sleep(0.01)
        assert ran == ["settled"]

    run(body)


def test_a_step_after_acks_never_starts_if_an_output_is_refused() -> None:
    async def body() -> None:
        outputs: list[asyncio.Future[Any]] = [asyncio.Future(), asyncio.Future()]
        ran = settled_after(outputs)
        outputs[0].set_exception(RuntimeError("not acked"))
        outputs[1].set_result(None)
        await asyncio.sleep(0.01)

        assert ran == []

    run(body)


class FakeOutputs:
    """Hands out a future per record, or refuses when its queue is full."""

    def __init__(self, full: bool = False) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int | None]] = []
        self.futures: list[asyncio.Future[None]] = []
        self.full = full

    def send_now(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Any = None,
        partition: int | None = None,
    ) -> asyncio.Future[None]:
        if self.full:
            raise BufferError("Local: Queue full")
        assert key is not None
        self.sent.append((topic, key, value, partition))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


def sender_table(outputs: FakeOutputs, in_flight: InFlight) -> TypedTable[Note]:
    sender = ChangelogSender(cast(Outputs, outputs), in_flight, "app-notes-changelog")
    return TypedTable(FakeTable(), Note, sender)


def put_after_an_output(
    table: TypedTable[Note], in_flight: InFlight
) -> asyncio.Future[Any]:
    """Record an output of event 41, and write what must follow it; return it."""
    output: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    in_flight.add(JOBS, 41, [output])
    table.put("k", Note(text="one"), after=[output])
    return output


@pytest.mark.usefixtures("in_event")
def test_the_commit_of_a_write_waits_for_its_changelog_record() -> None:
    async def body() -> None:
        outputs, in_flight = FakeOutputs(), InFlight()
        output = put_after_an_output(sender_table(outputs, in_flight), in_flight)
        commit = asyncio.ensure_future(in_flight.through(JOBS, 41))
        output.set_result(None)
        await asyncio.sleep(0.01)

        assert outputs.sent == [("app-notes-changelog", b"k", b'{"text":"one"}', 3)]
        assert not commit.done()
        outputs.futures[0].set_result(None)
        await asyncio.wait_for(commit, 1)

    run(body)


@pytest.mark.usefixtures("in_event")
def test_a_changelog_record_with_no_room_fails_the_commit() -> None:
    async def body() -> None:
        in_flight = InFlight()
        table = sender_table(FakeOutputs(full=True), in_flight)

        table.put("k", Note(text="one"))

        with pytest.raises(ProducerSendError, match="Queue full"):
            await in_flight.through(JOBS, 41)

    run(body)


@pytest.mark.usefixtures("in_event")
def test_a_commit_waits_for_a_changelog_record_not_yet_released_at_its_start() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        outputs, in_flight = FakeOutputs(), InFlight()
        output = put_after_an_output(sender_table(outputs, in_flight), in_flight)

        # The commit is due; in the same turn the output is acked and the
        # next event records an output of its own, which clears the acked one
        # before the write's changelog record has been released.
        commit = asyncio.ensure_future(in_flight.through(JOBS, 42))
        output.set_result(None)
        acked: asyncio.Future[Any] = loop.create_future()
        acked.set_result(None)
        in_flight.add(JOBS, 42, [acked])
        await asyncio.sleep(0.01)

        assert len(outputs.futures) == 1
        assert not commit.done()
        outputs.futures[0].set_result(None)
        await asyncio.wait_for(commit, 1)

    run(body)


@pytest.mark.usefixtures("in_event")
def test_a_refused_output_fails_the_commit_while_its_write_is_still_held() -> None:
    async def body() -> None:
        in_flight = InFlight()
        output = put_after_an_output(sender_table(FakeOutputs(), in_flight), in_flight)

        output.set_exception(RuntimeError("not acked"))

        with pytest.raises(ProducerSendError, match="not acked"):
            await asyncio.wait_for(in_flight.through(JOBS, 41), 1)

    run(body)


@pytest.mark.usefixtures("in_event")
def test_a_changelog_record_the_producer_cannot_take_fails_the_commit() -> None:
    class Broken(FakeOutputs):
        def send_now(self, *args: Any, **kwargs: Any) -> asyncio.Future[None]:
            raise RuntimeError("producer gone")

    async def body() -> None:
        in_flight = InFlight()
        table = sender_table(Broken(), in_flight)

        table.put("k", Note(text="one"))

        with pytest.raises(ProducerSendError, match="producer gone"):
            await asyncio.wait_for(in_flight.through(JOBS, 41), 1)

    run(body)
