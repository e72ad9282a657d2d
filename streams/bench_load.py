"""The benchmark's data: the workload it produces and the outputs it reads back.

The workload is the demo's scenario reduced to first acceptances: every
assignment is accepted once, from a backend, and half the acceptances carry
their party snapshot (as in the demo) while the other half make the worker
look the parties up in the reference topics.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from contracts import generation
from contracts.errors import ContractflowError
from contracts.generation import RegistryEntry
from contracts.keys import contract_id as derive_contract_id
from contracts.keys import contract_key
from contracts.lifecycle import apply_event
from contracts.models import AssignmentEvent, Contract, ContractJob, Document
from contracts.rendering import render_contract
from streams import scenario as scenarios
from streams.admin import client_config, consumer_config, producer_config
from streams.artifacts import FileArtifactStore
from streams.codec import Codec
from streams.scenario import Triple
from streams.settings import Settings
from streams.topics import Catalog
from templates import KNOWN_TEMPLATES, load_template

log = logging.getLogger(__name__)

ACCEPTED = "AssignmentAccepted"
# Every assignment accepted once, by a backend, delivered once.
ONLY_ACCEPTANCES = scenarios.Mix(
    accepted=1.0, declined=0.0, frontend=0.0, twice=0.0, thrice=0.0
)
FLUSH_SECONDS = 120.0
CONNECT_SECONDS = 30.0
POLL_BATCH = 2000


class BenchError(ContractflowError):
    """The benchmark could not run or could not measure; the message says why."""


@dataclass(frozen=True)
class Workload:
    """Reference data and acceptances: `bulk` first as a backlog, then `paced`."""

    organizations: list[dict[str, Any]]
    collaborators: list[dict[str, Any]]
    bulk: list[dict[str, Any]]
    paced: list[dict[str, Any]]


def workload(assignments: int, paced: int = 0, seed: int = 11) -> Workload:
    """Return `assignments` + `paced` first acceptances and their parties."""
    plan = scenarios.generate(
        seed=seed, assignments=assignments + paced, mix=ONLY_ACCEPTANCES
    )
    accepted = [e for e in plan.events if e["event_type"] == ACCEPTED]
    return Workload(
        plan.organizations,
        plan.collaborators,
        accepted[:assignments],
        accepted[assignments:],
    )


def triple(record: dict[str, Any]) -> Triple:
    """Return the (org, project, assignment) an event or contract is about."""
    return (record["org_id"], record["project_id"], record["assignment_id"])


def create_topic(
    settings: Settings, name: str, config: dict[str, str] | None = None
) -> None:
    """Create `name` with the configured partitions; an existing one is kept."""
    admin = AdminClient(client_config(settings.broker))
    topic = NewTopic(
        name, settings.partitions, settings.replication_factor, config=config or {}
    )
    future = admin.create_topics([topic], operation_timeout=30)[name]
    try:
        future.result()
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise BenchError(f"cannot create {name}: {exc.args[0].str()}") from exc


class Delivery:
    """Collects delivery reports: each record's timestamp, and the failures."""

    def __init__(self, size: int) -> None:
        self.stamps: list[int] = [0] * size
        self.failures: list[str] = []
        self.last_by_partition: dict[int, tuple[bytes, bytes]] = {}

    def report(self, index: int, err: KafkaError | None, msg: Message) -> None:
        """Keep what the broker said about record `index`."""
        if err is not None:
            self.failures.append(err.str())
            return
        self.stamps[index] = msg.timestamp()[1]
        self.last_by_partition[msg.partition() or 0] = (
            msg.key() or b"",
            msg.value() or b"",
        )


def produce_json(
    settings: Settings, topic: str, records: list[dict[str, Any]], key_field: str
) -> list[int]:
    """Produce JSON records keyed by `key_field`; return their timestamps (ms)."""
    pairs = ((str(r[key_field]).encode(), json.dumps(r).encode()) for r in records)
    return produce_raw(settings, topic, pairs, len(records)).stamps


def produce_raw(
    settings: Settings,
    topic: str,
    pairs: Iterable[tuple[bytes, bytes]],
    size: int,
    pace: Callable[[int], None] | None = None,
) -> Delivery:
    """Produce (key, value) pairs, calling `pace(index)` before each one."""
    producer = Producer(producer_config(settings))
    # Connected and told where the topic lives before the first record: a
    # record's timestamp is taken when it is produced, and otherwise the first
    # ones of a paced run would count the producer's start in their latency.
    producer.list_topics(topic, timeout=CONNECT_SECONDS)
    if pace is not None:
        _warm_up(producer, settings)
    delivery = Delivery(size)
    for index, (key, value) in enumerate(pairs):
        if pace is not None:
            pace(index)
        _send(producer, topic, key, value, partial(delivery.report, index))
    _flush(producer, topic, delivery)
    return delivery


def produce_paced(
    settings: Settings,
    topic: str,
    records: list[dict[str, Any]],
    key_field: str,
    rate: float,
) -> list[int]:
    """Produce records at `rate` per second, each on its own schedule."""
    pairs = [(str(r[key_field]).encode(), json.dumps(r).encode()) for r in records]
    start = 0.0

    def pace(index: int) -> None:
        nonlocal start
        # The schedule starts with the first record, once the producer is up.
        if index == 0:
            start = time.monotonic()
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    return produce_raw(settings, topic, pairs, len(pairs), pace).stamps


def _warm_up(producer: Producer, settings: Settings) -> None:
    """Return once the producer has sent a record, to a topic of its own.

    An idempotent librdkafka producer asks for its producer id when it
    starts; when its bootstrap connection is replaced by the broker's
    advertised one first, it finds no broker ready and asks again 500 ms
    later, and records produced meanwhile wait with it, their timestamps
    already taken.
    """
    topic = f"{Catalog(settings).app_id}.bench-warm-up"
    create_topic(settings, topic)
    producer.list_topics(topic, timeout=CONNECT_SECONDS)
    delivery = Delivery(1)
    _send(producer, topic, b"warm-up", b"{}", partial(delivery.report, 0))
    _flush(producer, topic, delivery)


def _send(producer: Producer, topic: str, key: bytes, value: bytes, cb: Any) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value, on_delivery=cb)
            break
        except BufferError:
            # The local queue is full: serve delivery reports until it drains.
            producer.poll(0.5)
    producer.poll(0)


def _flush(producer: Producer, topic: str, delivery: Delivery) -> None:
    left = producer.flush(FLUSH_SECONDS)
    if delivery.failures or left:
        first = delivery.failures[0] if delivery.failures else "flush timed out"
        raise BenchError(
            f"{len(delivery.failures) + left} records not delivered to {topic}: {first}"
        )


def seal_partition_ends(settings: Settings, topic: str, delivery: Delivery) -> None:
    """Send the last record of each partition again, alone in its batch.

    Known shortcoming of Tansu 0.6: it reports a partition's end as the base
    offset of its last batch plus one, and Faust's recovery stops there. A
    last batch of one record makes the end exact; the copy changes nothing in
    a compacted topic.
    """
    producer = Producer({**producer_config(settings), "batch.num.messages": 1})
    sealed = Delivery(len(delivery.last_by_partition))
    for index, (key, value) in enumerate(delivery.last_by_partition.values()):
        _send(producer, topic, key, value, partial(sealed.report, index))
        _flush(producer, topic, sealed)


@dataclass
class Outputs:
    """Raw records read back from an output topic, decoded later."""

    first_seen: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)
    dead_letters: int = 0
    last_new: float = field(default_factory=time.monotonic)


class OutputWatcher:
    """Reads `contracts` and `contract.dlq` from the start, keeping raw bytes.

    Decoding waits until the run is over, so that the benchmark's own process
    does not compete with the worker for the machine's cores meanwhile.
    """

    def __init__(self, settings: Settings, contracts: str, dlq: str) -> None:
        self.outputs = Outputs()
        self._contracts = contracts
        self._consumer = Consumer(consumer_config(settings))
        self._consumer.assign(
            [
                TopicPartition(topic, p, OFFSET_BEGINNING)
                for topic in (contracts, dlq)
                for p in range(settings.partitions)
            ]
        )

    def poll(self, timeout: float) -> None:
        """Read what arrives within `timeout` seconds."""
        for message in self._consumer.consume(POLL_BATCH, timeout):
            if message.error() is not None:
                continue
            if message.topic() != self._contracts:
                self.outputs.dead_letters += 1
                continue
            key = message.key() or b""
            if key not in self.outputs.first_seen:
                stamp = message.timestamp()[1]
                self.outputs.first_seen[key] = (stamp, message.value() or b"")
                self.outputs.last_new = time.monotonic()

    def wait_for(self, count: int, *, stall: float, alive: Callable[[], bool]) -> bool:
        """Poll until `count` distinct contracts; False after `stall` idle seconds."""
        self.outputs.last_new = time.monotonic()
        while len(self.outputs.first_seen) < count:
            self.poll(0.5)
            if time.monotonic() - self.outputs.last_new > stall:
                return False
            if not alive():
                raise BenchError("a worker exited during the run")
        return True

    def close(self) -> None:
        """Leave the broker."""
        self._consumer.close()


def issued_by_triple(outputs: Outputs) -> dict[Triple, int]:
    """Return the first contract timestamp of each assignment, decoding now."""
    codec = Codec()
    issued: dict[Triple, int] = {}
    for stamp, raw in outputs.first_seen.values():
        contract = codec.decode_any(raw)
        if not isinstance(contract, Contract):
            continue
        for assignment_id in contract.assignment_ids:
            key = (contract.org_id, contract.project_id, assignment_id)
            issued[key] = min(stamp, issued.get(key, stamp))
    return issued


def registry_entry(work: Workload, artifact_dir: Path) -> RegistryEntry:
    """Return a registry entry as the generator stores it, its PDF rendered once."""
    event = next(e for e in work.bulk if "parties" in e)
    job = _job_of(event)
    body = generation.contract_body(job, lambda _: None, lambda _: None)
    template = load_template(job.contract_template_version)
    pdf = render_contract(body, generation.contract_id_for(job), template)
    document = FileArtifactStore(artifact_dir).put(pdf, "application/pdf")
    return issued_entry(event, document)


def issued_entry(event: dict[str, Any], document: Document) -> RegistryEntry:
    """Return the entry the generator records once `event`'s contract is issued.

    The event must carry its party snapshot: no directory is consulted.
    """
    job = _job_of(event)
    body = generation.contract_body(job, lambda _: None, lambda _: None)
    # A delivery of the length a worker records, so the entry has its size.
    delivery = "bench000000.contract.jobs/0/0"
    entry, _ = generation.issued(
        job, body, document, now=job.issued_at, delivery=delivery
    )
    return entry


def _job_of(event: dict[str, Any]) -> ContractJob:
    """Return the job the intake enqueues for a first acceptance."""
    decision = apply_event(
        None,
        AssignmentEvent.model_validate(event),
        known_templates=KNOWN_TEMPLATES,
        now=datetime.now(UTC),
    )
    [job] = decision.outcome.jobs
    return job


def registry_records(entry: RegistryEntry, count: int) -> Iterator[tuple[bytes, bytes]]:
    """Yield `count` distinct registry keys and values shaped like `entry`.

    Each key is the contract key of another assignment of the same project,
    and its contract id is derived from it as the generator derives it; the
    rest of the value is the same contract.
    """
    contract = entry.contract
    assert contract is not None, "an issued entry carries its contract"
    shape = entry.model_dump_json()
    for n in range(count):
        key = contract_key(
            contract.org_id,
            contract.project_id,
            [f"bench-{n:07d}"],
            contract.contract_template_version,
        )
        value = shape.replace(entry.contract_key, key).replace(
            contract.contract_id, derive_contract_id(key)
        )
        yield key.encode(), value.encode()


def write_registry(
    settings: Settings, topic: str, entry: RegistryEntry, count: int
) -> float:
    """Write `count` registry entries to the changelog; return their size in MB."""
    sizes = [0]

    def counted() -> Iterator[tuple[bytes, bytes]]:
        for key, value in registry_records(entry, count):
            sizes[0] += len(key) + len(value)
            yield key, value

    delivery = produce_raw(settings, topic, counted(), count)
    seal_partition_ends(settings, topic, delivery)
    return sizes[0] / 1e6
