"""Reading topics back from the beginning to their end, for read-time views.

No consumer group is joined and nothing is committed: every partition is
assigned directly and read from its first offset until the broker reports its
end. Any worker, or an operator's shell, can therefore read any tenant's
records, and the caller filters them.

Known shortcoming: every read scans the topics from their first offset, so
its cost grows with what they retain; a view kept per mission would bound it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from contracts.errors import ContractflowError, TransientError
from contracts.models import Record
from streams.admin import consumer_config
from streams.codec import Codec
from streams.settings import Settings
from streams.topics import TopicSpec

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
# A few topics of a busy deployment read back in a second or two; past this
# the broker is slow or gone, and the caller is better told so.
READ_TIMEOUT_SECONDS = 20.0

Predicate = Callable[[Record], bool]
ReadSpec = tuple[TopicSpec, type[Record]]
_Partition = tuple[str | None, int]


class ReadbackError(TransientError):
    """The topics could not be read to their end in time."""


def read_topics(
    settings: Settings,
    specs: Sequence[ReadSpec],
    predicate: Predicate,
    *,
    codec: Codec | None = None,
    timeout: float = READ_TIMEOUT_SECONDS,
) -> dict[str, list[Record]]:
    """Return, per topic name, the records of `specs` that satisfy `predicate`.

    Each topic's records are decoded as its model and kept in partition
    order, so the last record of a key is the latest one. Records that do not
    decode are skipped: they were dead-lettered when the pipeline read them.
    """
    codec = codec or Codec(settings.schema_registry_url)
    models = {spec.name: model for spec, model in specs}
    found: dict[str, list[Record]] = {name: [] for name in models}
    consumer = Consumer({**consumer_config(settings), "enable.partition.eof": True})
    try:
        pending = _assign(consumer, list(models), timeout)
        _drain(consumer, pending, _keeper(codec, models, predicate, found), timeout)
    except KafkaException as exc:
        raise ReadbackError(f"cannot read back {sorted(models)}: {exc}") from exc
    finally:
        consumer.close()
    return found


def _assign(consumer: Consumer, names: list[str], timeout: float) -> set[_Partition]:
    """Assign every non-empty partition of `names`; return those left to read."""
    metadata = consumer.list_topics(timeout=timeout)
    partitions: list[TopicPartition] = []
    for name in names:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            raise ReadbackError(f"topic {name} does not exist")
        for number in topic.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(name, number), timeout=timeout
            )
            if high > low:
                partitions.append(TopicPartition(name, number, OFFSET_BEGINNING))
    consumer.assign(partitions)
    return {(p.topic, p.partition) for p in partitions}


def _drain(
    consumer: Consumer,
    pending: set[_Partition],
    keep: Callable[[Message], None],
    timeout: float,
) -> None:
    # The end of a partition is where the broker reports it (partition EOF),
    # not the high watermark taken before reading: the embedded broker gives
    # the base offset of the last batch plus one, short of the real end.
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise ReadbackError(f"{len(pending)} partitions not read within {timeout}s")
        message = consumer.poll(POLL_SECONDS)
        if message is None:
            continue
        error = message.error()
        if error is None:
            keep(message)
        elif error.code() == KafkaError._PARTITION_EOF:
            pending.discard((message.topic(), message.partition()))
        else:
            log.warning("read back error topic=%s error=%s", message.topic(), error)


def _keeper(
    codec: Codec,
    models: dict[str, type[Record]],
    predicate: Predicate,
    found: dict[str, list[Record]],
) -> Callable[[Message], None]:
    def keep(message: Message) -> None:
        topic, raw = message.topic(), message.value()
        if topic is None or raw is None:
            return
        try:
            record = codec.decode(raw, models[topic])
        except ContractflowError as exc:
            log.debug(
                "skipping undecodable record topic=%s offset=%d: %s",
                topic,
                message.offset(),
                exc,
            )
            return
        if predicate(record):
            found[topic].append(record)

    return keep
