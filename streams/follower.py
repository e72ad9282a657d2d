"""Following a compacted topic into memory, on every worker.

Each worker keeps the latest value of every key of a few small topics (party
reference data, assignment states, contracts) so that any worker can answer
for any key. A plain consumer assigned to every partition, with no group and
no commits, reads them from the beginning and keeps reading in a thread.

Faust's GlobalTable would do this in principle, but it stops following the
partitions it considers its own once recovery ends, and on the embedded
broker its recovery can end one batch short.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from streams.admin import client_config

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
BATCH = 500


class TopicFollower:
    """The latest raw value of each key of one topic, kept current by a thread."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._partitions = partitions
        self._values: dict[bytes, bytes] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.records_read = 0

    def get(self, key: bytes) -> bytes | None:
        """The latest value under `key`, or None (also after a tombstone)."""
        return self._values.get(key)

    def __len__(self) -> int:
        return len(self._values)

    def start(self) -> None:
        """Start following the topic in a daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"follow-{self.topic}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop following and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        consumer = Consumer(self._config())
        consumer.assign(
            [TopicPartition(self.topic, p, 0) for p in range(self._partitions)]
        )
        log.info("following topic=%s partitions=%d", self.topic, self._partitions)
        try:
            while not self._stop.is_set():
                for message in consumer.consume(BATCH, POLL_SECONDS):
                    self._apply(message)
        except Exception:  # the thread must say why it died, then let /readyz tell
            log.exception("stopped following topic=%s", self.topic)
            raise
        finally:
            consumer.close()

    def _apply(self, message: Any) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("error following topic=%s: %s", self.topic, error)
            return
        key = message.key()
        if key is None:
            return
        value = message.value()
        if value is None:
            self._values.pop(key, None)
        else:
            self._values[key] = value
        self.records_read += 1

    def _config(self) -> dict[str, Any]:
        return {
            **client_config(self._bootstrap),
            "group.id": f"follower-{self.topic}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
        }
