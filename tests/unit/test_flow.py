"""The stream queues keep live records when the flow is resumed again."""

from __future__ import annotations

import asyncio

from mode.utils.queues import FlowControlQueue

from streams.flow import SteadyFlowControl


def queue_of(flow: SteadyFlowControl) -> FlowControlQueue[str]:
    return FlowControlQueue(flow_control=flow, clear_on_resume=True)


def test_a_resume_while_the_flow_runs_keeps_the_records_already_queued() -> None:
    async def run() -> int:
        flow = SteadyFlowControl()
        queue = queue_of(flow)
        flow.resume()
        await queue.put("fetched after the seek")
        flow.resume()
        return queue.qsize()

    assert asyncio.run(run()) == 1


def test_leaving_a_suspension_clears_what_the_previous_assignment_queued() -> None:
    async def run() -> int:
        flow = SteadyFlowControl()
        queue = queue_of(flow)
        flow.resume()
        await queue.put("fetched before the rebalance")
        flow.suspend()
        flow.resume()
        return queue.qsize()

    assert asyncio.run(run()) == 0
