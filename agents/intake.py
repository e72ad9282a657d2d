"""Intake: assignment events move the ledger; acceptances enqueue jobs.

It also reads the bundle links of GenerateContract bundles, partitioned like
assignment events, so one loop writes each ledger entry, one record at a time.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from agents.aggregate import policy_of
from agents.base import run_step, utcnow
from contracts import aggregation
from contracts.aggregation import WindowInput
from contracts.deadletters import Origin
from contracts.keys import scope_key
from contracts.lifecycle import (
    ACCEPTED_OR_LATER,
    BundleLink,
    LedgerEntry,
    apply_event,
    apply_link,
)
from contracts.models import AssignmentEvent
from streams import inbound
from streams.emit import Emitter
from streams.inbound import Headers
from templates import KNOWN_TEMPLATES

if TYPE_CHECKING:
    from streams.app import Runtime

log = logging.getLogger(__name__)


def register(runtime: Runtime) -> None:
    """Attach the intake agent to the `assignments` topic."""
    emitter = Emitter(runtime.app, runtime.catalog, runtime.codec, runtime.metrics)
    max_bytes = runtime.settings.max_record_bytes
    policy = policy_of(runtime.settings)

    async def step(origin: Origin, headers: Headers) -> None:
        event = inbound.decode(
            runtime.codec, origin, AssignmentEvent, max_bytes=max_bytes
        )
        runtime.metrics.event_in(event.event_type)
        if not event.trace_id:
            event = event.model_copy(
                update={"trace_id": inbound.trace_id_from(headers)}
            )
        scope = scope_key(event.org_id, event.project_id, event.assignment_id)
        before = runtime.ledger.get(scope)
        if policy is not None and aggregation.claims(event):
            event = aggregation.claimed(event, policy)
        decision = apply_event(
            before,
            event,
            known_templates=KNOWN_TEMPLATES,
            now=utcnow(),
        )
        outcome = decision.outcome
        held: tuple[WindowInput, ...] = ()
        if policy is not None:
            jobs, held = aggregation.forwarded(
                decision.entry, event, outcome.jobs, policy
            )
            outcome = replace(outcome, jobs=jobs)
        # Outputs first, then the ledger: its changelog waits for their acks,
        # so a crash in between replays the event against the old entry and
        # sends the same records again.
        sent = await emitter.emit(outcome, headers, state=decision.entry)
        await emitter.to_windows(held, headers)
        if _accepted_now(before, decision.entry):
            # The deadline goes to Redis with others; the entry (which says
            # accepted, so a replay would not set it) and the commit wait.
            deadline = await runtime.detector.expect(scope)
            emitter.hold(deadline)
            sent = [*sent, deadline]
        if decision.entry is not None:
            runtime.ledger.put(scope, decision.entry, after=sent)
        if decision.duplicate:
            runtime.metrics.duplicate("intake")
        log.debug(
            "assignment event type=%s scope=%s duplicate=%s stale=%s trace_id=%s",
            event.event_type.value,
            scope,
            decision.duplicate,
            decision.stale,
            event.trace_id,
        )

    async def link_step(origin: Origin, headers: Headers) -> None:
        link = inbound.decode(runtime.codec, origin, BundleLink, max_bytes=max_bytes)
        scope = scope_key(link.org_id, link.project_id, link.assignment_id)
        decision = apply_link(runtime.ledger.get(scope), link)
        # Outputs first, then the ledger, as for assignment events.
        sent = await emitter.emit(decision.outcome, headers, state=decision.entry)
        if decision.entry is not None:
            runtime.ledger.put(scope, decision.entry, after=sent)
        log.debug(
            "bundle link scope=%s contract_key=%s applied=%s trace_id=%s",
            scope,
            link.contract_key,
            decision.entry is not None,
            link.trace_id,
        )

    async def route(origin: Origin, headers: Headers) -> None:
        if origin.topic == links:
            await link_step(origin, headers)
        else:
            await step(origin, headers)

    async def intake(stream: Any) -> None:
        async for event in stream.events():
            await run_step(event, route, emitter)

    catalog = runtime.catalog
    links = catalog.bundle_links.name
    topics = runtime.app.topic(
        catalog.assignments.name, links, key_serializer="raw", value_serializer="raw"
    )
    runtime.app.agent(topics, name="intake")(intake)


def _accepted_now(before: LedgerEntry | None, after: LedgerEntry | None) -> bool:
    """Whether this event moved the assignment into a state that needs a contract."""
    was = before is not None and before.state in ACCEPTED_OR_LATER
    return after is not None and after.state in ACCEPTED_OR_LATER and not was
