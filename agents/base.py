"""What every stage loop does around its own step: guard, dead-letter, log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from contracts.deadletters import Origin, dead_letter
from contracts.errors import ContractflowError
from streams.emit import Emitter
from streams.inbound import Headers, origin_of, trace_headers

log = logging.getLogger(__name__)

Step = Callable[[Origin, Headers], Awaitable[None]]
OnGiveUp = Callable[[Origin, Headers, BaseException], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


async def run_step(
    event: Any, step: Step, emitter: Emitter, on_give_up: OnGiveUp | None = None
) -> None:
    """Run `step` on one event; whatever it raises, dead-letter and go on.

    Nothing may escape a Faust agent loop: Faust would ack and commit the
    record that failed, and it would be lost without a trace.
    """
    origin = origin_of(event.message)
    headers = trace_headers(event.message.headers)
    try:
        await step(origin, headers)
    except asyncio.CancelledError:
        emitter.interrupted()
        raise
    except ContractflowError as error:
        log.warning(
            "dead-lettering record: %s topic=%s partition=%d offset=%d",
            error.reason,
            origin.topic,
            origin.partition,
            origin.offset,
        )
        await _give_up(origin, headers, error, emitter, on_give_up)
    except Exception as error:
        log.exception(
            "unexpected error, dead-lettering topic=%s partition=%d offset=%d",
            origin.topic,
            origin.partition,
            origin.offset,
        )
        await _give_up(origin, headers, error, emitter, on_give_up)


async def _give_up(
    origin: Origin,
    headers: Headers,
    error: BaseException,
    emitter: Emitter,
    on_give_up: OnGiveUp | None,
) -> None:
    if on_give_up is not None:
        await on_give_up(origin, headers, error)
        return
    await emitter.dead_letter(dead_letter(origin, error, now=utcnow()), origin, headers)
