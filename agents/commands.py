"""Commands: bundles, amendments and void resolutions become jobs; previews render."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from agents.base import run_step, utcnow
from contracts import commands, generation
from contracts.commands import Command, CommandType
from contracts.deadletters import Origin
from contracts.errors import TransientError
from contracts.models import PreviewReply
from contracts.outcome import Outcome
from contracts.rendering import render_contract
from streams import inbound
from streams.emit import Emitter
from streams.inbound import Headers
from templates import KNOWN_TEMPLATES, load_template

if TYPE_CHECKING:
    from streams.app import Runtime

log = logging.getLogger(__name__)

# A command may name an assignment or contract this worker's views have not
# caught up with; waiting a little (1+2+4 s) covers the views' usual lag,
# and what is still unknown after that is dead-lettered for a redrive.
WAIT_SECONDS = (1.0, 2.0, 4.0)


def register(runtime: Runtime) -> None:
    """Attach the commands agent to the `contract.commands` topic."""
    emitter = Emitter(runtime.app, runtime.catalog, runtime.codec, runtime.metrics)
    max_bytes = runtime.settings.max_record_bytes

    async def step(origin: Origin, headers: Headers) -> None:
        command = inbound.decode(runtime.codec, origin, Command, max_bytes=max_bytes)
        for delay in (*WAIT_SECONDS, None):
            try:
                await handle(command, headers)
                return
            except TransientError as error:
                if delay is None:
                    raise
                log.info(
                    "command waits command_id=%s type=%s reason=%s",
                    command.command_id,
                    command.command_type.value,
                    error.reason,
                )
                await asyncio.sleep(delay)

    async def handle(command: Command, headers: Headers) -> None:
        if command.command_type is CommandType.PREVIEW:
            await emitter.preview(preview(command), headers)
            return
        if command.command_type is CommandType.GENERATE:
            await generate(command, headers)
        else:
            await emitter.emit(outcome_of(command), headers)
        log.debug(
            "command accepted command_id=%s type=%s trace_id=%s",
            command.command_id,
            command.command_type.value,
            command.trace_id,
        )

    async def generate(command: Command, headers: Headers) -> None:
        job = commands.bundle_job(command, runtime.states.get)
        await emitter.emit(Outcome(jobs=(job,)), headers)
        # Only once the job is acknowledged: a cancel marker the intake sends
        # on a link then lands after the job under its key, and voids it.
        await emitter.wait_for_acks()
        await emitter.links(commands.bundle_links(job, command), headers)

    def outcome_of(command: Command) -> Outcome:
        base = runtime.contracts.get(command.contract_id or "")
        if command.command_type is CommandType.AMEND:
            job, audits = commands.amendment_job(command, base, KNOWN_TEMPLATES)
            return Outcome(jobs=(job,)) + audits
        return Outcome(jobs=(commands.resolution_job(command, base),))

    def preview(command: Command) -> PreviewReply:
        job = commands.preview_job(command)
        body = generation.contract_body(
            job, runtime.parties.organization, runtime.parties.collaborator
        )
        document = render_contract(
            body, None, load_template(job.contract_template_version)
        )
        return PreviewReply(
            request_id=command.request_id or "",
            media_type="application/pdf",
            document=document,
            terms=body.terms,
            trace_id=command.trace_id,
            occurred_at=utcnow(),
        )

    async def commands_agent(stream: Any) -> None:
        async for event in stream.events():
            await run_step(event, step, emitter)

    runtime.app.agent(runtime.topic(runtime.catalog.commands), name="commands")(
        commands_agent
    )
