"""Writes that many events ask for, made together: one round trip per batch.

A batch is taken a moment (the linger) after its first item comes, and while
one batch is being written the items handed in go into the next, so a busy
stage makes few large writes. The linger is latency for whatever waits for
the items; use batches for writes nothing urgent waits for.
Each item gets a future that resolves once its batch is written; the caller
decides what waits for it (a commit, a table write).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Batches(Generic[T]):
    """Hands items to `write` in batches, one batch being written at a time."""

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[object]],
        *,
        limit: int,
        linger: float = 0.0,
    ) -> None:
        self._write = write
        self._linger = linger
        # Past this many items waiting, `add` waits for the writer to take them:
        # a store that stops answering then stops its callers.
        self._limit = limit
        self._queued: list[tuple[T, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._taken: asyncio.Future[None] | None = None

    async def add(self, item: T) -> asyncio.Future[None]:
        """Queue `item`; the future resolves once the batch holding it is
        written, or fails with what the write raised."""
        loop = asyncio.get_running_loop()
        while len(self._queued) >= self._limit:
            if self._taken is None:
                self._taken = loop.create_future()
            await asyncio.shield(self._taken)
        written: asyncio.Future[None] = loop.create_future()
        self._queued.append((item, written))
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._drain())
        return written

    def waiting(self) -> int:
        """Items queued and not yet taken by the writer."""
        return len(self._queued)

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[None]]] = []
        try:
            while self._queued:
                await asyncio.sleep(self._linger)
                batch, self._queued = self._queued, []
                self._let_callers_in()
                try:
                    await self._write([item for item, _ in batch])
                except Exception as error:
                    for _, written in batch:
                        if not written.done():
                            written.set_exception(error)
                else:
                    for _, written in batch:
                        if not written.done():
                            written.set_result(None)
                batch = []
        except BaseException:
            # Cancelled, as when the loop stops: what was taken or queued is
            # not written, and whatever waits for it fails rather than hangs.
            for _, written in [*batch, *self._queued]:
                written.cancel()
            self._queued = []
            self._let_callers_in()
            raise
        finally:
            self._writer = None

    def _let_callers_in(self) -> None:
        if self._taken is not None:
            self._taken.set_result(None)
            self._taken = None
