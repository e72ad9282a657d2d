"""Faust's Kafka transport, committing an input only after its outputs.

A stage sends its outputs at once and goes on to the next record without
waiting for them; each output is recorded against the partition and offset
of its input (`InFlight`). Before Faust commits an offset, the commit waits
for the acknowledgement of every output recorded at or below it, and a
refused output stops the commit, and the worker with it, so that its input
is processed again after a restart (rule 8). A stage thus waits for the
broker neither per record nor per commit interval.

Faust also asks the broker to hold each fetch up to 1.5 s for more data;
the embedded broker holds it that long when a partition is idle, which was
most of the acceptance-to-contract latency until the wait was cut.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from typing import Any

from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

from streams.flow import ContractflowApp
from streams.outputs import Outputs

# Long enough not to spin on idle partitions, short against the 100 ms p99
# latency target of the two stages.
FETCH_MAX_WAIT_MS = 10

Output = asyncio.Future[Any]


class InFlight:
    """Outputs not yet known to be acknowledged, by input partition and offset."""

    def __init__(self) -> None:
        self._pending: defaultdict[TP, deque[tuple[int, Output]]] = defaultdict(deque)

    def add(self, tp: TP, offset: int, outputs: Iterable[Output]) -> None:
        """Record outputs of the input at `offset` of `tp`.

        Mostly in processing order; a changelog record comes later, under the
        offset of the input whose write it carries.
        """
        pending = self._pending[tp]
        pending.extend((offset, output) for output in outputs)
        # Acknowledged ones leave at once, so the queue only holds the tail.
        while pending and acknowledged(pending[0][1]):
            pending.popleft()

    async def through(self, tp: TP, offset: int) -> None:
        """Wait for every output of inputs up to `offset` of `tp`, including
        those recorded while waiting (a changelog record released by an ack).

        Raises ProducerSendError if the broker refused one of them; it stays
        recorded, so no later wait passes over it either.
        """
        pending = self._pending.get(tp)
        while pending:
            covered = [output for at, output in pending if at <= offset]
            for output in covered:
                if output.done() and not acknowledged(output):
                    error = None if output.cancelled() else output.exception()
                    raise ProducerSendError(
                        f"an output of {tp.topic}/{tp.partition} up to offset "
                        f"{offset} was not acknowledged: {error or 'cancelled'!r}"
                    ) from error
            waiting = [output for output in covered if not output.done()]
            if not waiting:
                while pending and pending[0][0] <= offset:
                    pending.popleft()
                return
            # A refusal fails the commit at once, whatever else is pending.
            await asyncio.wait(waiting, return_when=asyncio.FIRST_EXCEPTION)


def acknowledged(output: Output) -> bool:
    """Whether the broker has acknowledged `output`: done, and neither
    cancelled nor failed."""
    return output.done() and not output.cancelled() and output.exception() is None


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes a fixed 1500 ms; aiokafka reads it when it starts.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class Consumer(driver.Consumer):
    """The aiokafka consumer, refusing to commit past an output not acked."""

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _handle_attached(self, commit_offsets: Mapping[TP, int]) -> None:
        # Faust calls this before it commits `commit_offsets`; a
        # ProducerSendError makes it crash the consumer instead.
        in_flight: InFlight = self.app.in_flight  # type: ignore[attr-defined]
        for tp, offset in commit_offsets.items():
            await in_flight.through(tp, offset)


class Transport(driver.Transport):
    """The aiokafka transport with the consumer above."""

    Consumer = Consumer


class App(ContractflowApp):
    """The app's flow control, with its consumer on the transport above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = InFlight()
        # The stages' output producer, set by `streams.app.create_app`.
        self.outputs: Outputs | None = None

    async def on_stop(self) -> None:
        """Stop the consumer (its last commit waits for outputs), then the
        output producer."""
        await super().on_stop()
        if self.outputs is not None:
            await self.outputs.close()

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
