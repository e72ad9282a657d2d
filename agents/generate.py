"""Generate: a job becomes one contract per key, rendered, stored and emitted."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from agents.base import run_step, utcnow
from contracts import generation
from contracts.deadletters import Origin, dead_letter
from contracts.errors import PermanentError, TransientError
from contracts.generation import RegistryEntry
from contracts.models import ContractJob
from contracts.rendering import render_contract
from streams import inbound
from streams.emit import Emitter
from streams.inbound import Headers
from templates import load_template

if TYPE_CHECKING:
    from streams.app import Runtime

log = logging.getLogger(__name__)

PDF = "application/pdf"


def register(runtime: Runtime) -> None:
    """Attach the generate agent to the `contract.jobs` topic."""
    emitter = Emitter(runtime.app, runtime.catalog, runtime.codec)
    max_bytes = runtime.settings.max_record_bytes
    parties = runtime.parties

    async def step(origin: Origin, headers: Headers) -> None:
        job = inbound.decode(runtime.codec, origin, ContractJob, max_bytes=max_bytes)
        try:
            await _process(job, origin, headers)
        except PermanentError as error:
            await _give_up_job(job, origin, headers, error)
        except TransientError as error:
            # Without a retry scheduler the last attempt is this one.
            await _give_up_job(job, origin, headers, error)

    async def _process(job: ContractJob, origin: Origin, headers: Headers) -> None:
        now = utcnow()
        new_entry: RegistryEntry | None
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
            document = runtime.store.put(pdf, PDF)
            new_entry, outcome = generation.issued(job, body, document, now=now)
        else:
            new_entry, outcome = plan.entry, plan.outcome

        # Outputs before the registry: once a key is recorded, a replay takes
        # the duplicate path, so everything the issue emits must be acked first.
        await emitter.emit(outcome, headers)
        if new_entry is not None:
            runtime.registry.put(job.contract_key, new_entry)
        log.debug(
            "job kind=%s contract_key=%s attempt=%d outcome=%s trace_id=%s",
            job.kind.value,
            job.contract_key,
            job.attempt,
            plan.label,
            job.trace_id,
        )

    async def _give_up_job(
        job: ContractJob, origin: Origin, headers: Headers, error: Exception
    ) -> None:
        reason = getattr(error, "reason", str(error))
        log.warning(
            "job dead-lettered contract_key=%s attempt=%d reason=%s",
            job.contract_key,
            job.attempt,
            reason,
        )
        letter = dead_letter(
            origin,
            error,
            now=utcnow(),
            attempts=job.attempt,
            contract_key=job.contract_key,
            trace_id=job.trace_id,
        )
        await emitter.emit(generation.dead_lettered(job, reason, now=utcnow()), headers)
        await emitter.dead_letter(letter, origin, headers)

    async def generate(stream: Any) -> None:
        async for event in stream.events():
            await run_step(event, step, emitter)

    runtime.app.agent(runtime.topic(runtime.catalog.jobs), name="generate")(generate)
