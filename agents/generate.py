"""Generate: a job becomes one contract per key, rendered, stored and emitted."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agents.base import run_step, utcnow
from contracts import generation
from contracts.commands import refused
from contracts.deadletters import Origin, dead_letter
from contracts.errors import ContractflowError, ReasonCode
from contracts.generation import RegistryEntry
from contracts.keys import scope_key
from contracts.models import ContractJob, ContractStatus
from contracts.outcome import Outcome
from contracts.rendering import render_contract
from contracts.retry import GiveUp, RetryPolicy, next_attempt
from streams import inbound
from streams.artifacts import Placed
from streams.emit import Emitter, after_acks
from streams.inbound import Headers
from streams.retrying import Retries, poll_interval
from templates import load_template

if TYPE_CHECKING:
    from streams.app import Runtime

log = logging.getLogger(__name__)

PDF = "application/pdf"


def register(runtime: Runtime) -> None:
    """Attach the generate agent to the `contract.jobs` topic."""
    settings = runtime.settings
    emitter = Emitter(runtime.app, runtime.catalog, runtime.codec, runtime.metrics)
    max_bytes = settings.max_record_bytes
    parties = runtime.parties
    policy = RetryPolicy(
        settings.retry_base_seconds,
        settings.retry_cap_seconds,
        settings.retry_max_attempts,
        rng=random.random,
    )
    retries = Retries(
        runtime.scheduler,
        emitter,
        runtime.codec,
        runtime.readiness,
        lease_seconds=settings.retry_lease_seconds,
    )

    async def step(origin: Origin, headers: Headers) -> None:
        job = inbound.decode(runtime.codec, origin, ContractJob, max_bytes=max_bytes)
        try:
            await _process(job, origin, headers)
        except ContractflowError as error:
            await _after_failure(job, origin, headers, error)

    async def _process(job: ContractJob, origin: Origin, headers: Headers) -> None:
        now = utcnow()
        new_entry: RegistryEntry | None
        placed: Placed | None = None
        entry = runtime.registry.get(job.contract_key)
        plan = generation.plan(job, entry, delivery=origin.position, now=now)
        if plan.issue:
            body = generation.contract_body(
                job, parties.organization, parties.collaborator
            )
            pdf = render_contract(
                body,
                generation.contract_id_for(job),
                load_template(job.contract_template_version),
            )
            placed = runtime.store.place(pdf, PDF)
            new_entry, outcome = generation.issued(
                job, body, placed.document, now=now, delivery=origin.position
            )
        else:
            new_entry, outcome = plan.entry, plan.outcome

        scopes = _covered(job, outcome)
        if plan.issue and scopes:
            [contract] = outcome.contracts
            outcome += await runtime.detector.resolutions(contract, scopes)

        # Outputs first, then the registry: the entry's changelog waits for
        # their acks, as does this job's commit, so a crash in between replays
        # the job against no entry. Should the entry get there first
        # anyway, a replay of this very delivery sends the issue's records
        # again (`generation.plan`).
        sent = await emitter.emit(outcome, headers)
        if plan.refusal is not None:
            await _refuse(job, origin, headers, plan.refusal)
            return
        # The document's fsyncs run in a thread while the next job is taken
        # up; the job counts as done, and its registry entry leaves, only once
        # the document is durable. A crash before replays the job, which
        # renders the same bytes and finds them, or writes them again.
        durable = [await emitter.before_commit(placed.sync)] if placed else []
        if new_entry is not None:
            runtime.registry.put(job.contract_key, new_entry, after=[*sent, *durable])
        if scopes:
            # Settling erases the warnings the contract's notices resolve, so
            # it waits for those notices to be acked; a crash before replays
            # the job, which finds the warnings still there.
            after_acks(sent, lambda: runtime.detector.settle(scopes))
        log.debug(
            "job kind=%s contract_key=%s attempt=%d outcome=%s trace_id=%s",
            job.kind.value,
            job.contract_key,
            job.attempt,
            plan.label,
            job.trace_id,
        )

    async def _refuse(
        job: ContractJob, origin: Origin, headers: Headers, reason: str
    ) -> None:
        # The refusal is audited already; the letter lets the sender see why.
        log.info(
            "job refused contract_key=%s reason=%s trace_id=%s",
            job.contract_key,
            reason,
            job.trace_id,
        )
        letter = dead_letter(
            origin,
            refused(reason),
            now=utcnow(),
            attempts=job.attempt,
            contract_key=job.contract_key,
            trace_id=job.trace_id,
        )
        await emitter.dead_letter(letter, origin, headers)

    async def _after_failure(
        job: ContractJob, origin: Origin, headers: Headers, error: ContractflowError
    ) -> None:
        next_step = policy.next_step(job.attempt, error)
        if isinstance(next_step, GiveUp):
            await _give_up_job(job, origin, headers, error, next_step.reason_code)
            return

        # Parked before the audit and before the input counts as done: a crash
        # in between replays this attempt, and parking it again is a no-op.
        due_at = await retries.park(next_attempt(job), next_step.delay)
        runtime.metrics.retries_parked.inc()
        failed = generation.failed_attempt(
            job,
            error.reason,
            now=utcnow(),
            retry_at=datetime.fromtimestamp(due_at, UTC),
            retry_in=next_step.delay,
        )
        await emitter.emit(failed, headers)
        log.info(
            "job attempt failed, retry parked contract_key=%s attempt=%d "
            "delay=%.3f reason=%s trace_id=%s",
            job.contract_key,
            job.attempt,
            next_step.delay,
            error.reason,
            job.trace_id,
        )

    async def _give_up_job(
        job: ContractJob,
        origin: Origin,
        headers: Headers,
        error: ContractflowError,
        code: ReasonCode,
    ) -> None:
        log.warning(
            "job dead-lettered contract_key=%s attempt=%d reason_code=%s reason=%s",
            job.contract_key,
            job.attempt,
            code.value,
            error.reason,
        )
        letter = dead_letter(
            origin,
            error,
            now=utcnow(),
            attempts=job.attempt,
            contract_key=job.contract_key,
            trace_id=job.trace_id,
        ).model_copy(update={"reason_code": code.value})
        audits = generation.dead_lettered(job, error.reason, now=utcnow())
        await emitter.emit(audits, headers)
        await emitter.dead_letter(letter, origin, headers)

    async def generate(stream: Any) -> None:
        async for event in stream.events():
            await run_step(event, step, emitter)

    runtime.app.agent(runtime.topic(runtime.catalog.jobs), name="generate")(generate)
    runtime.app.timer(poll_interval(settings.retry_base_seconds))(retries.tick)


def _covered(job: ContractJob, outcome: Outcome) -> list[str]:
    """The assignments whose contract this outcome sends out, as scopes."""
    if not any(c.status is ContractStatus.ISSUED for c in outcome.contracts):
        return []
    return [
        scope_key(job.org_id, job.project_id, s.terms.assignment_id)
        for s in job.assignments
    ]
