"""The worker's outputs, produced by librdkafka and acknowledged into futures.

Under Faust, aiokafka builds, batches and sends every produce request on the
event loop, and the stages share that loop: per contract, the producer's
work was the largest single cost after rendering. Here a record is handed to
librdkafka, which batches and sends it on its own threads, and `send`
returns an asyncio future that the broker's acknowledgement resolves. A
thread polls the producer for delivery reports and passes them to the loop
in batches, one wake-up per poll rather than one per record.

The producer is idempotent and waits for every in-sync replica, so a record
retried by librdkafka is written once and records of one partition stay in
the order they were sent. Keys are hashed with murmur2, as the Java client
and aiokafka do, so a keyed record lands where other clients put its key.

Table changelog records go out through it too (`tables.typed`), each once
the outputs it follows are acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from contracts.errors import ContractflowError
from streams.admin import client_log, producer_config
from streams.inbound import Headers
from streams.settings import Settings
from streams.topics import Catalog

log = logging.getLogger(__name__)

# How long the delivery thread waits for reports in one poll; it only bounds
# how soon the thread notices that it should stop.
POLL_SECONDS = 0.1
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


Delivery = tuple["asyncio.Future[None]", KafkaError | None]


class Outputs:
    """Sends records through one librdkafka producer, started on first use."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = {**config, "error_cb": _on_error}
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # Filled by the delivery thread only, and swapped out by it.
        self._delivered: list[Delivery] = []

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
        producer = self._started()
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        report = partial(self._on_delivery, future)
        extra = {} if partition is None else {"partition": partition}
        try:
            producer.produce(
                topic, value, key, headers=headers, on_delivery=report, **extra
            )
        except KafkaException as error:
            future.set_exception(
                OutputRefusedError(f"{topic} refused a record: {error}")
            )
        return future

    def pending(self) -> int:
        """Records handed to librdkafka and not yet acknowledged or failed."""
        return 0 if self._producer is None else len(self._producer)

    async def close(self, timeout: float = FLUSH_SECONDS) -> None:
        """Wait up to `timeout` for what is queued, then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        self._flush_timeout = timeout
        self._stopping.set()
        await asyncio.to_thread(thread.join)
        self._thread = None
        if self.pending():
            log.warning("%d outputs not acknowledged at stop", self.pending())

    def _started(self) -> Producer:
        if self._producer is None:
            self._loop = asyncio.get_running_loop()
            self._producer = Producer(self._config)
            self._flush_timeout = FLUSH_SECONDS
            self._thread = threading.Thread(
                target=self._deliver, name="contractflow-outputs", daemon=True
            )
            self._thread.start()
        return self._producer

    def _on_delivery(
        self, future: asyncio.Future[None], error: KafkaError | None, _: Message
    ) -> None:
        # Runs on the delivery thread, inside poll() or flush().
        self._delivered.append((future, error))

    def _deliver(self) -> None:
        producer = self._producer
        assert producer is not None
        while not self._stopping.is_set():
            producer.poll(POLL_SECONDS)
            self._hand_over()
        producer.flush(self._flush_timeout)
        self._hand_over()

    def _hand_over(self) -> None:
        if not self._delivered:
            return
        batch, self._delivered = self._delivered, []
        assert self._loop is not None
        # A closed loop raises: nobody waits for these futures any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_settle, batch)


def _settle(batch: list[Delivery]) -> None:
    for future, error in batch:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            refused = OutputRefusedError(f"output not acknowledged: {error}")
            future.set_exception(refused)


def _on_error(error: KafkaError) -> None:
    # Connection trouble is retried by librdkafka and shows up as late acks;
    # a fatal error (the idempotent producer's state is lost) fails every
    # record after it, which stops the worker at its next commit.
    if error.fatal():
        log.error("output producer failed for good: %s", error)
    else:
        client_log.warning("output producer: %s", error)
