"""What `contractflow dlq list` and `dlq redrive` do, apart from argparse.

A dead letter is named by its place on `contract.dlq`, `PARTITION:OFFSET`.
Redriving sends it back where it came from: a job to `contract.jobs` as a
fresh first attempt, an assignment event to `assignments` with its original
key and bytes. The generator checks the registry again, so a key issued in
the meantime is not issued twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as Partition

from contracts.errors import ContractflowError
from contracts.models import ContractJob, DeadLetter
from contracts.retry import redriven
from streams.admin import client_config, producer_config, wait_for_broker
from streams.codec import Codec
from streams.settings import Settings
from streams.tools import CommandError
from streams.topics import Catalog

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
# Reading stops when every partition reported its end, or after this long
# without a record (a broker that never reports the end of a partition).
IDLE_SECONDS = 3.0
COLUMNS = ("offset", "reason_code", "source", "key", "contract_key", "attempts")


@dataclass(frozen=True)
class Letter:
    """A dead letter, where it sits on `contract.dlq`, and the tenant it names."""

    partition: int
    offset: int
    value: DeadLetter
    org_id: str | None = None
    project_id: str | None = None

    @property
    def position(self) -> str:
        """Name the letter as `PARTITION:OFFSET`."""
        return f"{self.partition}:{self.offset}"


@dataclass
class RedriveResult:
    """Letters sent back, and those that could not be, with the reason."""

    sent: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: int = 0

    @property
    def ok(self) -> bool:
        """Tell whether every chosen letter was sent and acknowledged."""
        return not self.skipped and not self.failed


def read_letters(settings: Settings, timeout: float = 10) -> list[Letter]:
    """Read every dead letter from the beginning of `contract.dlq`."""
    catalog, codec = Catalog(settings), Codec(settings.schema_registry_url)
    partitions = _partitions(settings, catalog.dlq.name, timeout)
    consumer = Consumer(
        {
            **client_config(settings.broker),
            "group.id": "contractflow-dlq",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign(
        [Partition(catalog.dlq.name, p, OFFSET_BEGINNING) for p in partitions]
    )
    try:
        return [_letter(codec, m) for m in _drain(consumer, len(partitions))]
    finally:
        consumer.close()


def select(
    letters: Iterable[Letter],
    *,
    reason: str | None = None,
    org: str | None = None,
    project: str | None = None,
    offsets: Sequence[str] = (),
) -> list[Letter]:
    """Keep the letters that match every filter given."""
    wanted = [_parse_offset(o) for o in offsets]
    return [
        letter
        for letter in letters
        if (reason is None or letter.value.reason_code == reason.upper())
        and (org is None or letter.org_id == org)
        and (project is None or letter.project_id == project)
        and (not wanted or any(_matches(letter, w) for w in wanted))
    ]


def format_table(letters: Sequence[Letter]) -> str:
    """Lay the letters out as a table of aligned columns, reason last."""
    rows = [
        (
            letter.position,
            letter.value.reason_code,
            letter.value.source_topic,
            letter.value.key or "-",
            letter.value.contract_key or "-",
            str(letter.value.attempts),
        )
        for letter in letters
    ]
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        + f"  {reason}"
        for row, reason in zip(
            [COLUMNS, *rows],
            ["reason", *(x.value.reason for x in letters)],
            strict=True,
        )
    ]
    return "\n".join(line.rstrip() for line in lines)


def list_letters(settings: Settings, out: TextIO, **filters: Any) -> int:
    """Print the dead letters that match `filters`; return how many."""
    timeout = filters.pop("timeout", 10)
    chosen = select(read_letters(settings, timeout), **filters)
    out.write(format_table(chosen) + "\n")
    out.write(f"{len(chosen)} dead letters\n")
    return len(chosen)


def redrive(
    settings: Settings,
    *,
    reason: str | None = None,
    offsets: Sequence[str] = (),
    everything: bool = False,
    timeout: float = 10,
) -> RedriveResult:
    """Send the chosen dead letters back to the topic they came from."""
    if not (reason or offsets or everything):
        raise CommandError("choose letters with --reason, --offset or --all")
    chosen = select(read_letters(settings, timeout), reason=reason, offsets=offsets)
    _check_offsets(chosen, offsets)
    catalog, codec = Catalog(settings), Codec(settings.schema_registry_url)
    producer, result = Producer(producer_config(settings)), RedriveResult()

    for letter in chosen:
        try:
            topic, key, value = resubmission(letter, catalog, codec)
        except ContractflowError as error:
            result.skipped.append((letter.position, str(error)))
            continue
        producer.produce(topic, key=key, value=value)
        result.sent.append(letter.position)
        log.info("redriven letter=%s topic=%s key=%s", letter.position, topic, key)
    result.failed = producer.flush(timeout)
    return result


def resubmission(
    letter: Letter, catalog: Catalog, codec: Codec
) -> tuple[str, str, bytes]:
    """Return the topic, key and bytes that send `letter` back; raise if none."""
    value = letter.value
    if value.raw_size > len(value.raw):
        raise CommandError(f"only {len(value.raw)} of {value.raw_size} bytes were kept")
    if value.source_topic == catalog.jobs.name:
        job = redriven(
            codec.decode(value.raw, ContractJob), letter=f"dlq/{letter.position}"
        )
        return catalog.jobs.name, job.contract_key, codec.encode(job)
    if value.source_topic == catalog.assignments.name:
        if value.key is None:
            raise CommandError("the record had no key; it would be refused again")
        return catalog.assignments.name, value.key, value.raw
    raise CommandError(f"redriving from {value.source_topic} is not supported")


def _partitions(settings: Settings, name: str, timeout: float) -> list[int]:
    topic = wait_for_broker(settings.broker, timeout).topics.get(name)
    if topic is None or topic.error is not None:
        raise CommandError(f"topic {name} does not exist")
    return sorted(topic.partitions)


def _check_offsets(chosen: Sequence[Letter], offsets: Sequence[str]) -> None:
    # A bare offset names one letter only if a single partition has it.
    for text in offsets:
        found = [x.position for x in chosen if _matches(x, _parse_offset(text))]
        if not found:
            raise CommandError(f"no dead letter at {text}")
        if len(found) > 1:
            raise CommandError(f"{text} is ambiguous; give one of {', '.join(found)}")


def _drain(consumer: Consumer, partitions: int) -> list[Any]:
    messages: list[Any] = []
    ended: set[int | None] = set()
    last = time.monotonic()
    while len(ended) < partitions and time.monotonic() - last < IDLE_SECONDS:
        message = consumer.poll(POLL_SECONDS)
        if message is None:
            continue
        last = time.monotonic()
        error = message.error()
        if error is not None and error.code() == KafkaError._PARTITION_EOF:
            ended.add(message.partition())
        elif error is not None:
            log.warning("cannot read contract.dlq: %s", error)
        else:
            ended.discard(message.partition())
            messages.append(message)
    return messages


def _letter(codec: Codec, message: Any) -> Letter:
    value = codec.decode(message.value(), DeadLetter)
    org, project = _tenant(codec, value.raw)
    return Letter(message.partition(), message.offset(), value, org, project)


def _tenant(codec: Codec, raw: bytes) -> tuple[str | None, str | None]:
    # The tenant is in the failed record itself, when it can still be read.
    try:
        record: Any = codec.decode_any(raw)
    except ContractflowError:
        return None, None
    if isinstance(record, dict):
        return record.get("org_id"), record.get("project_id")
    return getattr(record, "org_id", None), getattr(record, "project_id", None)


def _parse_offset(text: str) -> tuple[int | None, int]:
    partition, _, offset = text.rpartition(":")
    try:
        return (int(partition) if partition else None), int(offset)
    except ValueError:
        raise CommandError(f"not an offset or PARTITION:OFFSET: {text!r}") from None


def _matches(letter: Letter, wanted: tuple[int | None, int]) -> bool:
    partition, offset = wanted
    return letter.offset == offset and partition in (None, letter.partition)
