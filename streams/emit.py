"""Sending a decision's records, never letting an input count as done first.

An input offset may only be committed once every output it caused is
acknowledged (at-least-once without loss). Inside an agent, `emit` sends each
record at once and records it against the offset of the event being
processed, without waiting for its ack: the commit of that offset waits for
it (`streams.transport`). So an agent never waits for the broker per record,
and a commit never runs ahead of an output. Outside an agent (timers),
`emit` returns only after each send is acknowledged, and keeps trying while
the broker is unreachable.

A table write made with those futures waits for them (`tables.typed`), and
so can any other step (`after_acks`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import faust
from faust.exceptions import ProducerSendError
from faust.streams import current_event

from contracts.aggregation import WindowInput
from contracts.deadletters import Origin
from contracts.errors import ReasonCode
from contracts.lifecycle import BundleLink, LedgerEntry
from contracts.models import DeadLetter, PreviewReply, Record
from contracts.outcome import Outcome
from streams.codec import Codec
from streams.inbound import Headers, failed_trace_id
from streams.metrics import Metrics
from streams.outputs import Outputs
from streams.topics import Catalog
from streams.transport import InFlight, acknowledged

log = logging.getLogger(__name__)

# Blocking work (a document's fsyncs) running in threads at once, at most.
# Past that, the stage waits for one to end: a slow disk then slows the stage
# instead of growing the held table writes and the offsets not yet committed.
MAX_PENDING_WORK = 64

# Backoff between attempts to send outputs while the broker refuses them.
SEND_RETRY_FIRST_SECONDS = 0.2
SEND_RETRY_MAX_SECONDS = 5.0


class InterruptedEventError(Exception):
    """An event's step stopped part way; none of its offsets may be committed."""


class Emitter:
    """Encodes records and sends them to their topics under their keys."""

    def __init__(
        self, app: faust.App, catalog: Catalog, codec: Codec, metrics: Metrics
    ) -> None:
        self._app = app
        self._in_flight: InFlight = app.in_flight  # type: ignore[attr-defined]
        self._work_slots = asyncio.Semaphore(MAX_PENDING_WORK)
        self._codec = codec
        self._metrics = metrics
        self._outputs: Outputs = app.outputs  # type: ignore[attr-defined]
        self._routes = {
            "jobs": (catalog.jobs.name, "contract_key"),
            "contracts": (catalog.contracts.name, "contract_id"),
            "audits": (catalog.audit.name, "audit_id"),
            "notifications": (catalog.notifications.name, "notification_id"),
            "payment_blocks": (catalog.payment_blocks.name, "scope"),
        }
        self._states = catalog.assignment_states.name
        self._previews = catalog.previews.name
        self._dlq = catalog.dlq.name
        self._windows = catalog.aggregation.name
        self._links = catalog.bundle_links.name

    async def emit(
        self, outcome: Outcome, headers: Headers, state: LedgerEntry | None = None
    ) -> list[asyncio.Future[Any]]:
        """Send every record of `outcome`, and `state`.

        Inside an agent, return the records' futures without waiting for
        them; the commit of the current event waits for them. Outside one,
        return none: each send was awaited.
        """
        sends = [
            (topic, getattr(record, key_field), record)
            for name, (topic, key_field) in self._routes.items()
            for record in getattr(outcome, name)
        ]
        if state is not None:
            sends.append((self._states, state.scope, state))
        event = current_event()
        if event is None:
            await self._send_all(sends, headers)
            self._metrics.sent(outcome, datetime.now(UTC))
            return []
        send = self._outputs.send
        outputs: list[asyncio.Future[Any]] = [
            await send(topic, key.encode(), self._codec.encode(record), headers)
            for topic, key, record in sends
        ]
        message = event.message
        self._in_flight.add(message.tp, message.offset, outputs)
        self._metrics.sent(outcome, datetime.now(UTC))
        return outputs

    async def before_commit(self, work: Callable[[], None]) -> asyncio.Future[Any]:
        """Run blocking `work` in a thread; the event is not done before it is.

        Inside an agent, the current event's offset is not committed until
        `work` has returned, and if it raises, the worker stops as for a
        refused output, so the event is processed again. The returned future
        can hold back a table write (`tables.typed`) like an output's. Outside
        an agent, `work` runs at once and its error reaches the caller.
        """
        loop = asyncio.get_running_loop()
        event = current_event()
        if event is None:
            work()
            done: asyncio.Future[Any] = loop.create_future()
            done.set_result(None)
            return done
        await self._work_slots.acquire()
        future = loop.run_in_executor(None, work)
        future.add_done_callback(lambda _: self._work_slots.release())
        self.hold(future)
        return future

    def hold(self, future: asyncio.Future[Any]) -> None:
        """Inside an agent, the current event is not done before `future` is,
        and if it fails, the worker stops as for a refused output."""
        event = current_event()
        if event is not None:
            self._in_flight.add(event.message.tp, event.message.offset, [future])

    def interrupted(self) -> None:
        """Inside an agent, the current event's step stopped part way (its
        agent was cancelled, as when the worker stops): no commit may pass
        the event, so it is processed again.

        Faust acks the event of a cancelled agent all the same, and its
        outputs may not all have been sent or recorded yet.
        """
        stopped: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        stopped.set_exception(
            InterruptedEventError(
                "its processing was interrupted; it is read again after a restart"
            )
        )
        stopped.exception()  # read, so that it is not reported when collected
        self.hold(stopped)

    async def wait_for_acks(self) -> None:
        """Wait until this event's outputs, and those of the events before it
        on its partition, are acknowledged; for a stage about to block.

        A record the broker refuses stops the consumer, as at a commit.
        """
        event = current_event()
        if event is None:
            return
        message = event.message
        try:
            await self._in_flight.through(message.tp, message.offset)
        except ProducerSendError as error:
            await self._app.consumer.crash(error)
            # The worker stops; this event must not count as done meanwhile.
            await asyncio.Event().wait()

    async def preview(self, reply: PreviewReply, headers: Headers) -> None:
        """Send a draft preview under its request id."""
        await self._send_all([(self._previews, reply.request_id, reply)], headers)
        self._metrics.previews.inc()

    async def to_windows(
        self, records: Iterable[WindowInput], headers: Headers
    ) -> None:
        """Send what the aggregation policy holds under each record's group."""
        await self._send_all([(self._windows, r.group, r) for r in records], headers)

    async def to_every_window_partition(
        self, record: WindowInput, key: str, partitions: int
    ) -> None:
        """Send `record` to each partition of the windows' topic; no ack awaited."""
        raw_key, value = key.encode(), self._codec.encode(record)
        for partition in range(partitions):
            await self._outputs.send(self._windows, raw_key, value, None, partition)

    async def links(self, records: Iterable[BundleLink], headers: Headers) -> None:
        """Send bundle links under each assignment's id, as `assignments` keys it."""
        await self._send_all(
            [(self._links, r.assignment_id, r) for r in records], headers
        )

    async def dead_letter(
        self, letter: DeadLetter, origin: Origin, headers: Headers
    ) -> None:
        """Send `letter` to the dead letter topic under the original key."""
        if not letter.trace_id:
            # A record over the size limit is not read at all, not even here.
            too_large = letter.reason_code == ReasonCode.TOO_LARGE
            raw = None if too_large else origin.value
            trace_id = failed_trace_id(self._codec, raw, headers)
            letter = letter.model_copy(update={"trace_id": trace_id})
        await self._send_all([(self._dlq, origin.dlq_key, letter)], headers)
        self._metrics.dead_letter(letter.reason_code)

    async def _send_all(
        self, sends: Iterable[tuple[str, str, Record]], headers: Headers
    ) -> None:
        pending = [
            (topic, key.encode(), self._codec.encode(r)) for topic, key, r in sends
        ]
        delay = SEND_RETRY_FIRST_SECONDS
        while pending:
            futures = [
                await self._outputs.send(topic, key, value, headers)
                for topic, key, value in pending
            ]
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = [
                (send, result)
                for send, result in zip(pending, results, strict=True)
                if isinstance(result, BaseException)
            ]
            if not failed:
                return
            log.warning(
                "broker refused %d of %d outputs, retrying in %.1fs: %r",
                len(failed),
                len(pending),
                delay,
                failed[0][1],
            )
            pending = [send for send, _ in failed]
            await asyncio.sleep(delay)
            delay = min(delay * 2, SEND_RETRY_MAX_SECONDS)


# Steps started by `after_acks`, held until they finish: the loop keeps only
# weak references to tasks.
_running: set[asyncio.Task[None]] = set()


def after_acks(
    outputs: Iterable[asyncio.Future[Any]], step: Callable[[], Awaitable[None]]
) -> None:
    """Start `step` once every one of `outputs` is acknowledged, never before.

    If one fails, `step` never runs: the input is processed again instead.
    """
    waiting = list(outputs)
    left = len(waiting)

    def on_done(output: asyncio.Future[Any]) -> None:
        nonlocal left
        if not acknowledged(output):
            left = -1
        elif left > 0:
            left -= 1
            if left == 0:
                _start(step)

    if not waiting:
        _start(step)
    for output in waiting:
        output.add_done_callback(on_done)


def _start(step: Callable[[], Awaitable[None]]) -> None:
    task: asyncio.Task[None] = asyncio.ensure_future(step())
    _running.add(task)
    task.add_done_callback(_running.discard)
