"""The worker's outputs, produced by librdkafka and acknowledged into futures.

Under Faust, aiokafka builds, batches and sends every produce request on the
event loop, and the stages share that loop: per contract, the producer's
work was the largest single cost after rendering. Here a record is handed to
librdkafka, which batches and sends it on its own threads, and `send`
returns an asyncio future that the broker's acknowledgement resolves.

Delivery reports are served on the event loop: each send polls for those
that are ready, and while records are unacknowledged a task polls every few
milliseconds. librdkafka calls back into Python for every report; on a
thread of its own each callback had to take the interpreter lock from the
loop, thousands of times a second.

The producer is idempotent and waits for every in-sync replica, so a record
retried by librdkafka is written once and records of one partition stay in
the order they were sent. Keys are hashed with murmur2, as the Java client
and aiokafka do, so a keyed record lands where other clients put its key.

Table changelog records go out through it too (`tables.typed`), each once
the outputs it follows are acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from contracts.errors import ContractflowError
from streams.admin import client_log, producer_config
from streams.inbound import Headers
from streams.settings import Settings
from streams.topics import Catalog

log = logging.getLogger(__name__)

# While records are unacknowledged, delivery reports are polled this often.
# It delays acknowledgements (commits, changelog records), not the records.
POLL_SECONDS = 0.005
# librdkafka's "unassigned" partition: its partitioner chooses by key.
ANY_PARTITION = -1
# Records wait this long for others to share a produce request. Each hop of
# a contract (acceptance to job, job to contract) pays it once.
LINGER_MS = 2
# When librdkafka's queue is full (the broker is slow or away), a send
# waits this long before it tries again.
QUEUE_FULL_WAIT_SECONDS = 0.05
# On stop, unacknowledged records get this long to be acknowledged.
FLUSH_SECONDS = 10.0


def outputs_config(settings: Settings) -> dict[str, Any]:
    """Return the configuration of the worker's output producer."""
    return {
        **producer_config(settings),
        "client.id": f"{Catalog(settings).app_id}-outputs",
        "linger.ms": LINGER_MS,
        # The largest record a stage takes in, with room for its headers.
        "message.max.bytes": settings.max_record_bytes + 65536,
    }


class OutputRefusedError(ContractflowError):
    """The broker did not acknowledge a record, or librdkafka refused it."""


class Outputs:
    """Sends records through one librdkafka producer, made on first use.

    Use it from one event loop: futures are resolved on the loop that sent.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = {**config, "error_cb": _on_error}
        self._producer: Producer | None = None
        self._poller: asyncio.Task[None] | None = None

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[None]:
        """Queue a record; the returned future resolves once the broker has it.

        A record librdkafka refuses outright (too large, say) fails its
        future rather than raising, so every caller handles refusals in one
        place. While librdkafka's queue is full, this waits for room.
        """
        while True:
            try:
                return self.send_now(topic, key, value, headers, partition)
            except BufferError:
                await asyncio.sleep(QUEUE_FULL_WAIT_SECONDS)

    def send_now(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[None]:
        """`send` for a caller that cannot wait: raises BufferError if
        librdkafka's queue is full. Call it on the event loop."""
        if self._producer is None:
            self._producer = Producer(self._config)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            self._producer.produce(
                topic,
                value,
                key,
                partition=ANY_PARTITION if partition is None else partition,
                # The stubs want a list of a wider type; ours is only read.
                headers=cast("list[tuple[str, str | bytes | None]] | None", headers),
                on_delivery=partial(_settle, future),
            )
        except KafkaException as error:
            future.set_exception(
                OutputRefusedError(f"{topic} refused a record: {error}")
            )
        self._producer.poll(0)
        if self._poller is None:
            self._poller = asyncio.ensure_future(self._poll_while_pending())
        return future

    def pending(self) -> int:
        """Records handed to librdkafka and not yet acknowledged or failed."""
        return 0 if self._producer is None else len(self._producer)

    async def close(self, timeout: float = FLUSH_SECONDS) -> None:
        """Wait up to `timeout` for the records not yet acknowledged."""
        producer = self._producer
        if producer is None:
            return
        deadline = time.monotonic() + timeout
        while len(producer) and time.monotonic() < deadline:
            producer.poll(0)
            await asyncio.sleep(POLL_SECONDS)
        producer.poll(0)
        if self.pending():
            log.warning("%d outputs not acknowledged at stop", self.pending())

    async def _poll_while_pending(self) -> None:
        producer = self._producer
        assert producer is not None
        try:
            while len(producer):
                await asyncio.sleep(POLL_SECONDS)
                producer.poll(0)
        finally:
            self._poller = None


def _settle(future: asyncio.Future[None], error: KafkaError | None, _: Message) -> None:
    # Called by librdkafka from poll(), on the loop that owns `future`.
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(OutputRefusedError(f"output not acknowledged: {error}"))


def _on_error(error: KafkaError) -> None:
    # Connection trouble is retried by librdkafka and shows up as late acks;
    # a fatal error (the idempotent producer's state is lost) fails every
    # record after it, which stops the worker at its next commit.
    if error.fatal():
        log.error("output producer failed for good: %s", error)
    else:
        client_log.warning("output producer: %s", error)
