"""`contractflow demo`: the embedded stack, one worker, a seeded scenario, a summary.

The demo starts clean, feeds the reference records and then the events, waits
until the worker has consumed every input and the outputs have gone quiet,
then prints what came out and checks it against the scenario's expectations.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from contracts.errors import ContractflowError
from contracts.models import AuditType, NotificationCode
from streams import scenario as scenarios
from streams.admin import client_config, consumer_config, producer_config
from streams.codec import Codec
from streams.devrun import Stack, embedded_stack, worker_process
from streams.devstack import ChildProcess, env_for, exit_on_sigterm
from streams.scenario import Scenario, Triple
from streams.settings import Settings
from streams.topics import Catalog, TopicSpec

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_MISMATCH = 1  # the demo ran, but the outputs are not what was expected
EXIT_ERROR = 2  # the broker, redis-server or the worker could not run
EXIT_INTERRUPTED = 130

DEFAULT_DIR = Path(".contractflow/demo")
# A file that marks a directory as the demo's, so that a mistyped --dir is
# never wiped.
MARKER = ".contractflow-demo"
POLL_SECONDS = 0.2
LAG_CHECK_SECONDS = 1.0
# Faust commits offsets every 2.8 s (its default commit interval); outputs
# quiet for longer than that, with no lag, mean the worker is done.
QUIET_SECONDS = 4.0
# The first group join on the embedded broker takes a rebalance timeout
# (6 s); a worker issues tens of contracts a second. Both with a wide margin.
SETTLE_BASE_SECONDS = 90.0
SETTLE_SECONDS_PER_ASSIGNMENT = 0.25
BAR_WIDTH = 30
BAR_REFRESH_SECONDS = 0.1


class DemoError(ContractflowError):
    """The demo could not run; the message says what to look at."""


@dataclass
class Tally:
    """What the demo has read back from the output topics."""

    contracts: dict[str, tuple[Triple, ...]] = field(default_factory=dict)
    audits: set[str] = field(default_factory=set)
    generator_duplicates: set[str] = field(default_factory=set)
    refused: set[Triple] = field(default_factory=set)
    dead_letters: int = 0
    job_ends: dict[int, int] = field(default_factory=dict)
    last_output: float = field(default_factory=time.monotonic)
    last_contract: float = field(default_factory=time.monotonic)


@dataclass
class Report:
    """Everything the summary shows."""

    scenario: Scenario
    tally: Tally
    artifact_dir: Path
    pdfs: int
    elapsed: float
    busy: float
    settled: bool
    problems: list[str]


def run_demo(root: Path, *, assignments: int, seed: int, keep: bool) -> int:
    """Run the demo under `root` and return its exit code."""
    exit_on_sigterm()
    began = time.monotonic()
    plan = scenarios.generate(seed=seed, assignments=assignments)
    try:
        _clean(root)
        with embedded_stack(root) as stack:
            worker = worker_process(stack.settings, stack.root / "logs" / "worker.log")
            worker.start()
            try:
                report = _run(stack, worker, plan, began)
                return _finish(stack, report, keep)
            finally:
                worker.stop()
    except ContractflowError as exc:
        print(f"contractflow demo: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _clean(root: Path) -> None:
    # The demo's data lives in memory; leftovers on disk would only mislead.
    if root.exists() and any(root.iterdir()) and not (root / MARKER).exists():
        raise DemoError(f"{root} is not empty and not a demo directory; not wiping it")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / MARKER).write_text("made by `contractflow demo`; wiped by the next one\n")


def _run(stack: Stack, worker: ChildProcess, plan: Scenario, began: float) -> Report:
    settings = stack.settings
    catalog = Catalog(settings)
    observer = Observer(settings, catalog)
    observer.open()
    try:
        fed = time.monotonic()
        ends = _feed(settings, catalog, plan)
        observer.tally.last_output = time.monotonic()
        lag = GroupLag(settings, catalog, ends)
        bar = ProgressBar(len(plan.expected_contracts), sys.stderr)
        deadline = time.monotonic() + _settle_budget(len(plan.assignments))
        settled = _settle(observer, lag, worker, bar, deadline)
        bar.done()
    finally:
        observer.close()
    return _report(stack, plan, observer.tally, began, fed, settled)


def _settle_budget(assignments: int) -> float:
    return SETTLE_BASE_SECONDS + SETTLE_SECONDS_PER_ASSIGNMENT * assignments


def _feed(settings: Settings, catalog: Catalog, plan: Scenario) -> dict[int, int]:
    """Produce the reference records, then the events; return `assignments` ends."""
    # Reference data first, so that acceptances without a snapshot find it.
    # Known shortcoming of Tansu 0.6: it reports the end of a partition as the
    # base offset of its last batch plus one, and a worker recovering a global
    # table stops at that end. One record a batch keeps the end exact.
    alone = {"batch.num.messages": 1}
    _produce(settings, catalog.organizations, plan.organizations, alone)
    _produce(settings, catalog.collaborators, plan.collaborators, alone)
    return _produce(settings, catalog.assignments, plan.events)


def _produce(
    settings: Settings,
    spec: TopicSpec,
    records: Iterable[dict[str, Any]],
    config: dict[str, Any] | None = None,
) -> dict[int, int]:
    """Produce JSON records keyed by the topic's key field; return partition ends."""
    producer = Producer({**producer_config(settings), **(config or {})})
    ends: dict[int, int] = {}
    failures: list[str] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(err.str())
            return
        partition, end = _position(msg)
        ends[partition] = max(ends.get(partition, 0), end)

    for record in records:
        key, value = str(record[spec.key_field or ""]), json.dumps(record)
        _send(producer, spec.name, key, value.encode("utf-8"), delivered)
    left = producer.flush(30)
    if failures or left:
        raise DemoError(f"{len(failures) + left} records not delivered to {spec.name}")
    return ends


def _send(producer: Producer, topic: str, key: str, value: bytes, cb: Any) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value, on_delivery=cb)
            break
        except BufferError:
            # The local queue is full: serve delivery reports until it drains.
            producer.poll(1.0)
    producer.poll(0)


def _settle(
    observer: Observer,
    lag: GroupLag,
    worker: ChildProcess,
    bar: ProgressBar,
    deadline: float,
) -> bool:
    """Read outputs until the inputs are consumed and the outputs are quiet."""
    next_check = 0.0
    while time.monotonic() < deadline:
        observer.poll(POLL_SECONDS)
        bar.show(len(observer.tally.contracts))
        if not worker.running():
            raise DemoError(f"the worker exited; see its log at {worker.log_path}")
        now = time.monotonic()
        if now < next_check:
            continue
        next_check = now + LAG_CHECK_SECONDS
        quiet = now - observer.tally.last_output >= QUIET_SECONDS
        if quiet and lag.total(observer.job_ends()) == 0:
            return True
    return False


class Observer:
    """Reads the output topics from the beginning and tallies what it sees."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.codec = Codec(settings.schema_registry_url)
        self.tally = Tally()
        self._consumer: Consumer | None = None

    def open(self) -> None:
        """Assign every partition of the watched topics, from their start."""
        c = self.catalog
        topics = (c.contracts, c.audit, c.notifications, c.dlq, c.jobs)
        self._consumer = Consumer(consumer_config(self.settings))
        # assign() skips the group join, which the embedded broker makes slow.
        self._consumer.assign(
            [
                TopicPartition(spec.name, p, OFFSET_BEGINNING)
                for spec in topics
                for p in range(c.partitions)
            ]
        )

    def poll(self, timeout: float) -> int:
        """Read what arrives within `timeout` seconds; return how many records."""
        assert self._consumer is not None, "open() first"
        messages = self._consumer.consume(1000, timeout)
        for message in messages:
            if message.error() is None:
                self._tally(message)
            else:
                log.warning("consume error: %s", message.error())
        return len(messages)

    def job_ends(self) -> dict[int, int]:
        """Return where each `contract.jobs` partition ends, as far as known."""
        assert self._consumer is not None, "open() first"
        ends = dict(self.tally.job_ends)
        # Tansu may report an end short of the last record (see _feed); the
        # records read so far bound it from below.
        for partition in range(self.catalog.partitions):
            where = TopicPartition(self.catalog.jobs.name, partition)
            _, high = self._consumer.get_watermark_offsets(where, timeout=5)
            ends[partition] = max(ends.get(partition, 0), high)
        return ends

    def close(self) -> None:
        """Leave the broker."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _tally(self, message: Message) -> None:
        topic, tally = message.topic(), self.tally
        if topic == self.catalog.jobs.name:
            partition, end = _position(message)
            tally.job_ends[partition] = end
            return
        tally.last_output = time.monotonic()
        if topic == self.catalog.dlq.name:
            tally.dead_letters += 1
            return
        value = _json(self.codec.decode_any(message.value()))
        if topic == self.catalog.contracts.name:
            self._on_contract(value)
        elif topic == self.catalog.audit.name:
            self._on_audit(value)
        elif value.get("code") == NotificationCode.REQUEST_REFUSED.value:
            tally.refused.add(_triple(value))

    def _on_contract(self, value: dict[str, Any]) -> None:
        org_id, project_id = value["org_id"], value["project_id"]
        triples = tuple((org_id, project_id, a) for a in value["assignment_ids"])
        if value["contract_id"] not in self.tally.contracts:
            self.tally.last_contract = time.monotonic()
        self.tally.contracts[value["contract_id"]] = triples

    def _on_audit(self, value: dict[str, Any]) -> None:
        self.tally.audits.add(value["audit_id"])
        attempt = value["type"] == AuditType.GENERATION_ATTEMPT.value
        if attempt and value["outcome"] == "duplicate":
            self.tally.generator_duplicates.add(value["audit_id"])


class GroupLag:
    """How far the worker's consumer group is behind on the topics it reads."""

    def __init__(self, settings: Settings, catalog: Catalog, ends: dict[int, int]):
        self.catalog = catalog
        self.partitions = catalog.partitions
        self.assignment_ends = ends
        self._admin = AdminClient(client_config(settings.broker))

    def total(self, job_ends: dict[int, int]) -> int:
        """Return the records not yet committed on `assignments` and `contract.jobs`."""
        ends = {
            (self.catalog.assignments.name, p): e
            for p, e in self.assignment_ends.items()
        }
        ends.update({(self.catalog.jobs.name, p): e for p, e in job_ends.items()})
        committed = self._committed(list(ends))
        # A partition without a commit yet answers OFFSET_INVALID (negative).
        lag = sum(
            max(end - max(committed.get(tp, 0), 0), 0) for tp, end in ends.items()
        )
        log.debug("group lag=%d", lag)
        return lag

    def _committed(
        self, partitions: list[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        if not partitions:
            return {}
        request = ConsumerGroupTopicPartitions(
            self.catalog.app_id, [TopicPartition(t, p) for t, p in partitions]
        )
        futures = self._admin.list_consumer_group_offsets([request])
        try:
            answer = futures[self.catalog.app_id].result(timeout=5)
        except KafkaException as exc:
            # Before the worker has joined, the group may not exist yet.
            log.debug("no committed offsets yet: %s", exc)
            return {}
        return {(tp.topic, tp.partition): tp.offset for tp in answer.topic_partitions}


class ProgressBar:
    """A one-line progress bar, redrawn in place."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total = total
        self.out = out
        self._shown: tuple[int, float] = (-1, 0.0)

    def show(self, count: int) -> None:
        """Redraw the bar for `count`, at most every BAR_REFRESH_SECONDS."""
        now = time.monotonic()
        if count == self._shown[0] or now - self._shown[1] < BAR_REFRESH_SECONDS:
            return
        self._shown = (count, now)
        self.out.write("\r" + render_bar(count, self.total))
        self.out.flush()

    def done(self) -> None:
        """End the bar's line."""
        self.out.write("\n")
        self.out.flush()


def render_bar(count: int, total: int, width: int = BAR_WIDTH) -> str:
    """Return `[#####     ] count/total contracts`."""
    filled = width if total <= 0 else min(width, width * count // total)
    return f"[{'#' * filled}{' ' * (width - filled)}] {count}/{total} contracts"


def _report(
    stack: Stack, plan: Scenario, tally: Tally, began: float, fed: float, settled: bool
) -> Report:
    artifact_dir = stack.settings.artifact_dir
    problems = check(plan, tally)
    if not settled:
        problems.append("the worker did not settle before the deadline")
    return Report(
        scenario=plan,
        tally=tally,
        artifact_dir=artifact_dir,
        pdfs=sum(1 for _ in artifact_dir.rglob("*.pdf")),
        elapsed=time.monotonic() - began,
        busy=max(tally.last_contract - fed, 1e-3),
        settled=settled,
        problems=problems,
    )


def check(plan: Scenario, tally: Tally) -> list[str]:
    """Return what differs from the scenario's expectations; empty when all holds."""
    issued: dict[Triple, set[str]] = {}
    for contract_id, triples in tally.contracts.items():
        for triple in triples:
            issued.setdefault(triple, set()).add(contract_id)
    missing = plan.expected_contracts - issued.keys()
    doubled = [t for t in plan.expected_contracts if len(issued.get(t, ())) > 1]
    unwanted = issued.keys() - plan.expected_contracts
    counts = [
        (len(missing), "accepted assignments have no contract"),
        (len(doubled), "accepted assignments have more than one contract"),
        (len(unwanted), "assignments got a contract they must not have"),
        (len(plan.frontend - tally.refused), "frontend acceptances were not refused"),
        (tally.dead_letters, "records were dead-lettered"),
    ]
    return [f"{n} {what}" for n, what in counts if n]


def summary(report: Report) -> str:
    """Return the summary table and the verdict line."""
    plan, tally = report.scenario, report.tally
    rate = len(tally.contracts) / report.busy
    rows = [
        ("events in", f"{plan.event_count}  ({plan.duplicates} duplicates among them)"),
        (
            "assignments accepted",
            f"{len(plan.expected_contracts) + len(plan.frontend)}"
            f"  ({len(plan.frontend)} of them from a frontend)",
        ),
        ("contracts issued", str(len(tally.contracts))),
        (
            "duplicates suppressed",
            f"{plan.duplicates} at intake"
            f" + {len(tally.generator_duplicates)} at the generator",
        ),
        ("refused (frontend)", str(len(tally.refused))),
        ("dead letters", str(tally.dead_letters)),
        ("PDFs stored", f"{report.pdfs}  in {report.artifact_dir}"),
        (
            "elapsed",
            f"{report.elapsed:.1f} s  ({rate:.1f} contracts/s"
            " from the first event to the last contract)",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {value}" for name, value in rows]
    verdict = "; ".join(report.problems) or (
        "every accepted assignment has exactly one contract"
    )
    return "\n".join([*lines, "", verdict])


def _finish(stack: Stack, report: Report, keep: bool) -> int:
    print(summary(report), flush=True)
    code = EXIT_MISMATCH if report.problems else EXIT_OK
    if keep:
        _hold(stack)
    return code


def _hold(stack: Stack) -> None:
    print("\n--keep: the stack and the worker keep running; these settings reach it:")
    for name, value in sorted(env_for(stack.settings).items()):
        if name != "CONTRACTFLOW_JWT_SECRET":
            print(f"  export {name}={value}")
    print(f"logs: {stack.root / 'logs'}   Ctrl-C stops everything.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print()


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return dict(value.model_dump(mode="json"))


def _triple(value: dict[str, Any]) -> Triple:
    return (value["org_id"], value["project_id"], value["assignment_id"])


def _position(message: Message) -> tuple[int, int]:
    """Return the partition of a delivered record and the offset just past it."""
    # Both are None only for messages that were never produced or consumed.
    return message.partition() or 0, (message.offset() or 0) + 1
