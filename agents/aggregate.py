"""Aggregate: the policy's windows collect acceptances and close into bundles.

Windows close on ticks too, and the tables may only be written while the
stream of their partition is iterated, so the wall clock reaches the windows
as tick records that every worker sends to every partition of the topic.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from agents.base import run_step, utcnow
from contracts import aggregation
from contracts.aggregation import ClosedWindow, Shelf, WindowInput, WindowPolicy
from contracts.deadletters import Origin
from contracts.outcome import Outcome
from streams import inbound
from streams.emit import Emitter
from streams.inbound import Headers
from streams.settings import Settings
from tables.typed import declare_table

if TYPE_CHECKING:
    from streams.app import Runtime

log = logging.getLogger(__name__)


# Ticks come at least this often, so a window closes at most this late on the
# wall clock, and at most a quarter of the grace late once the grace is a few
# seconds. A tick is one small record per partition and worker.
TICK_MAX_SECONDS = 15.0
TICK_MIN_SECONDS = 0.5


def policy_of(settings: Settings) -> WindowPolicy | None:
    """The aggregation policy `settings` ask for, or None when it is off."""
    if settings.aggregation_window_seconds <= 0:
        return None
    return WindowPolicy(
        size=timedelta(seconds=settings.aggregation_window_seconds),
        grace=timedelta(seconds=settings.aggregation_grace_seconds),
    )


def tick_interval(policy: WindowPolicy) -> float:
    """Seconds between two ticks of one worker."""
    quarter_grace = policy.grace.total_seconds() / 4
    return min(max(quarter_grace, TICK_MIN_SECONDS), TICK_MAX_SECONDS)


def register(runtime: Runtime, policy: WindowPolicy) -> None:
    """Attach the aggregation agent to its topic, with its tables and ticks."""
    settings = runtime.settings
    emitter = Emitter(runtime.app, runtime.catalog, runtime.codec, runtime.metrics)
    topic = runtime.topic(runtime.catalog.aggregation)
    # Keyed by partition: a tick closes what its own partition holds. In the
    # configured store, like the ledger and registry, so that a new owner
    # reads these changelogs in bulk to their end (`tables.rocksdb`).
    store = settings.table_store
    shelves = declare_table(
        runtime.app, "windows", Shelf, settings.partitions, store=store
    )
    closed = declare_table(
        runtime.app, "closed-windows", ClosedWindow, settings.partitions, store=store
    )

    async def step(origin: Origin, headers: Headers) -> None:
        record = inbound.decode(
            runtime.codec, origin, WindowInput, max_bytes=settings.max_record_bytes
        )
        shelf_key = str(origin.partition)
        shelf = shelves.get(shelf_key) or Shelf()
        past = closed.get(record.group) if record.group else None
        result = aggregation.apply(shelf, past, record, policy.grace)

        # Jobs before the tables: a crash in between replays the record
        # against the old windows, and the same bundles go out again.
        sent = await emitter.emit(Outcome(jobs=result.jobs), headers)
        for window in result.closed:
            closed.put(window.group, window, after=sent)
        if result.shelf != shelf:
            shelves.put(shelf_key, result.shelf, after=sent)
        for job in result.jobs:
            log.info(
                "window bundle kind=%s contract_key=%s assignments=%d trace_id=%s",
                job.kind.value,
                job.contract_key,
                len(job.assignments),
                job.trace_id,
            )

    async def windows(stream: Any) -> None:
        async for event in stream.events():
            await run_step(event, step, emitter)

    async def tick() -> None:
        # Not awaited for its acknowledgement: a lost tick is made up by the next.
        try:
            await emitter.to_every_window_partition(
                aggregation.tick(utcnow()), aggregation.TICK_KEY, settings.partitions
            )
        except Exception:
            log.warning("cannot send window ticks, next try later", exc_info=True)

    runtime.app.agent(topic, name="aggregate")(windows)
    runtime.app.timer(tick_interval(policy))(tick)
