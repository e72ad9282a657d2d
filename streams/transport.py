"""Faust's Kafka transport, with a stricter commit and a shorter fetch wait.

Records an agent sends are attached to the offset of their input and
published by the commit of that offset, which waits for them before it
commits. Faust waits without looking at the results, so a record the broker
refused would count as sent; here a refused record stops the commit, and
the worker with it, so that its input is processed again (rule 8).

Faust also asks the broker to hold each fetch up to 1.5 s for more data;
the embedded broker appears to hold it that long when a partition is idle,
and the paced latency of the two stages was seconds until the wait was cut.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

from streams.flow import ContractflowApp

# Long enough not to spin on idle partitions, short against the 100 ms p99
# latency target of the two stages.
FETCH_MAX_WAIT_MS = 10


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes a fixed 1500 ms; aiokafka reads it when it starts.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class Consumer(driver.Consumer):
    """The aiokafka consumer, refusing to commit past a record not acked."""

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _handle_attached(self, commit_offsets: Mapping[TP, int]) -> None:
        # Every partition's records are published before any is awaited, so a
        # commit costs one round trip to the broker, not one per partition.
        attachments = self.app._attachments  # type: ignore[attr-defined]
        published = [
            (tp, offset, await attachments.publish_for_tp_offset(tp, offset))
            for tp, offset in commit_offsets.items()
        ]
        for tp, offset, futures in published:
            results = await asyncio.gather(*futures, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    # Faust crashes the consumer on this error instead of
                    # committing: the inputs are read again after a restart.
                    raise ProducerSendError(
                        f"an output of {tp.topic}/{tp.partition} up to offset "
                        f"{offset} was not acknowledged: {result!r}"
                    ) from result


class Transport(driver.Transport):
    """The aiokafka transport with the consumer above."""

    Consumer = Consumer


class App(ContractflowApp):
    """The app's flow control, with its consumer on the transport above."""

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
