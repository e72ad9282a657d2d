"""Sending a decision's records and waiting until the broker has them all.

An input offset may only be committed once every output it caused is
acknowledged (at-least-once without loss), so `emit` returns only after each
send is acknowledged, and keeps trying while the broker is unreachable
rather than letting the input count as done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

import faust

from contracts.aggregation import WindowInput
from contracts.deadletters import Origin
from contracts.errors import ReasonCode
from contracts.lifecycle import BundleLink, LedgerEntry
from contracts.models import DeadLetter, PreviewReply, Record
from contracts.outcome import Outcome
from streams.codec import Codec
from streams.inbound import Headers, failed_trace_id
from streams.metrics import Metrics
from streams.topics import Catalog, TopicSpec

log = logging.getLogger(__name__)

# Backoff between attempts to send outputs while the broker refuses them.
SEND_RETRY_FIRST_SECONDS = 0.2
SEND_RETRY_MAX_SECONDS = 5.0


class Emitter:
    """Encodes records and sends them to their topics under their keys."""

    def __init__(
        self, app: faust.App, catalog: Catalog, codec: Codec, metrics: Metrics
    ) -> None:
        self._codec = codec
        self._metrics = metrics
        self._routes = {
            "jobs": (self._topic(app, catalog.jobs), "contract_key"),
            "contracts": (self._topic(app, catalog.contracts), "contract_id"),
            "audits": (self._topic(app, catalog.audit), "audit_id"),
            "notifications": (
                self._topic(app, catalog.notifications),
                "notification_id",
            ),
            "payment_blocks": (self._topic(app, catalog.payment_blocks), "scope"),
        }
        self._states = self._topic(app, catalog.assignment_states)
        self._previews = self._topic(app, catalog.previews)
        self._dlq = self._topic(app, catalog.dlq)
        self._windows = self._topic(app, catalog.aggregation)
        self._links = self._topic(app, catalog.bundle_links)

    async def emit(
        self, outcome: Outcome, headers: Headers, state: LedgerEntry | None = None
    ) -> int:
        """Send every record of `outcome`, and `state`; return how many were sent."""
        sends = [
            (topic, getattr(record, key_field), record)
            for name, (topic, key_field) in self._routes.items()
            for record in getattr(outcome, name)
        ]
        if state is not None:
            sends.append((self._states, state.scope, state))
        await self._send_all(sends, headers)
        self._metrics.sent(outcome, datetime.now(UTC))
        return len(sends)

    async def preview(self, reply: PreviewReply, headers: Headers) -> None:
        """Send a draft preview under its request id."""
        await self._send_all([(self._previews, reply.request_id, reply)], headers)
        self._metrics.previews.inc()

    async def to_windows(
        self, records: Iterable[WindowInput], headers: Headers
    ) -> None:
        """Send what the aggregation policy holds under each record's group."""
        await self._send_all([(self._windows, r.group, r) for r in records], headers)

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
        self, sends: Iterable[tuple[faust.TopicT, str, Record]], headers: Headers
    ) -> None:
        pending = [
            (topic, key.encode(), self._codec.encode(r)) for topic, key, r in sends
        ]
        delay = SEND_RETRY_FIRST_SECONDS
        while pending:
            futures = [
                await topic.send(key=key, value=value, headers=headers, force=True)
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

    @staticmethod
    def _topic(app: faust.App, spec: TopicSpec) -> faust.TopicT:
        return app.topic(spec.name, key_serializer="raw", value_serializer="raw")
