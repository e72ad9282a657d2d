"""Batches: items handed in during a write go out together in the next one."""

from __future__ import annotations

import asyncio

import pytest

from streams.batching import Batches


class Store:
    """Records each batch; each write waits until the test lets it finish."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def write(self, items: list[int]) -> None:
        self.batches.append(items)
        await self.release.wait()
        if self.fail is not None:
            raise self.fail


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_items_added_during_a_write_share_the_next_batch() -> None:
    async def run() -> tuple[list[list[int]], list[bool]]:
        store = Store()
        batches = Batches(store.write, limit=100)
        first = await batches.add(1)
        await settle()
        later = [await batches.add(n) for n in (2, 3, 4)]
        await settle()
        # The first write is still running: the others wait, unwritten.
        waiting = [f.done() for f in (first, *later)]
        store.release.set()
        await asyncio.wait_for(asyncio.gather(first, *later), 5)
        return store.batches, waiting

    written, waiting = asyncio.run(run())

    assert written == [[1], [2, 3, 4]]
    assert waiting == [False, False, False, False]


def test_a_failed_write_fails_the_futures_of_its_batch_only() -> None:
    async def run() -> tuple[BaseException | None, BaseException | None, list[int]]:
        store = Store()
        batches = Batches(store.write, limit=100)
        store.fail = RuntimeError("store down")
        doomed = await batches.add(1)
        await settle()
        store.release.set()
        await asyncio.gather(doomed, return_exceptions=True)
        store.fail = None
        fine = await batches.add(2)
        await asyncio.wait_for(fine, 5)
        return doomed.exception(), fine.exception(), store.batches[-1]

    doomed, fine, last = asyncio.run(run())

    assert isinstance(doomed, RuntimeError)
    assert fine is None
    assert last == [2]


def test_add_waits_while_the_limit_is_reached() -> None:
    async def run() -> tuple[bool, bool, list[list[int]]]:
        store = Store()
        batches = Batches(store.write, limit=2)
        await batches.add(1)
        await settle()
        await batches.add(2)
        await batches.add(3)
        third = asyncio.ensure_future(batches.add(4))
        await settle()
        blocked = not third.done()
        store.release.set()
        written = await asyncio.wait_for(third, 5)
        await asyncio.wait_for(written, 5)
        return blocked, batches.waiting() == 0, store.batches

    blocked, drained, written = asyncio.run(run())

    assert blocked
    assert drained
    assert written == [[1], [2, 3], [4]]


@pytest.mark.parametrize("count", [1, 7])
def test_every_item_is_written_exactly_once(count: int) -> None:
    async def run() -> list[list[int]]:
        store = Store()
        store.release.set()
        batches = Batches(store.write, limit=3)
        futures = [await batches.add(n) for n in range(count)]
        await asyncio.wait_for(asyncio.gather(*futures), 5)
        return store.batches

    written = asyncio.run(run())

    assert sorted(n for batch in written for n in batch) == list(range(count))


def test_items_added_within_the_linger_share_the_first_batch() -> None:
    async def run() -> list[list[int]]:
        store = Store()
        store.release.set()
        batches = Batches(store.write, limit=100, linger=0.05)
        futures = [await batches.add(n) for n in range(3)]
        await settle()
        # Past the first loop iterations, still within the linger.
        futures.append(await batches.add(3))
        await asyncio.wait_for(asyncio.gather(*futures), 5)
        return store.batches

    assert asyncio.run(run()) == [[0, 1, 2, 3]]


def test_a_writer_cancelled_mid_write_cancels_what_it_held_and_what_waited() -> None:
    async def run() -> tuple[bool, bool]:
        store = Store()
        batches = Batches(store.write, limit=100)
        writing = await batches.add(1)
        await settle()
        queued = await batches.add(2)
        writer = batches._writer
        assert writer is not None
        writer.cancel()
        await settle()
        return writing.cancelled(), queued.cancelled()

    # Neither counts as written: whatever waits for them fails, not hangs.
    assert asyncio.run(run()) == (True, True)


def test_a_writer_cancelled_in_its_linger_lets_the_callers_at_the_limit_go_on() -> None:
    async def run() -> tuple[bool, list[list[int]]]:
        store = Store()
        store.release.set()
        batches = Batches(store.write, limit=2, linger=0.05)
        first = await batches.add(1)
        await batches.add(2)
        third = asyncio.ensure_future(batches.add(3))
        await settle()
        writer = batches._writer
        assert writer is not None
        writer.cancel()
        written = await asyncio.wait_for(third, 1)
        await asyncio.wait_for(written, 1)
        return first.cancelled(), store.batches

    # The cancelled batch is never written; the caller that waited for room
    # gets a new writer.
    assert asyncio.run(run()) == (True, [[3]])
