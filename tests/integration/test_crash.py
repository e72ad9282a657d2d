"""Crashes mid-stream: two workers, one SIGKILLed twice, Redis restarted once.

The input is a seeded scenario in which every assignment is accepted, about
one delivery in ten is a duplicate, and some assignments are cancelled, the
cancel delivered before or after the acceptance. It is produced in four
chunks, each fault striking while a chunk is being worked on:

    chunk 1 ... SIGKILL worker-1 and start it again
    chunk 2 ... restart redis-server (append-only persistence)
    chunk 3 ... SIGKILL worker-1 and start it again
    chunk 4 ... run to the end

Then the output topics alone (contracts, contract.audit, contract.dlq,
contract.payment-blocks) and the stored documents must show that every
assignment is accounted for, no assignment or key got two contract ids,
every document matches its sha256, and every contract has an audited attempt.
The counts are printed (`pytest -s` shows them) and repeated in the failures.

CI runs a short version. The full one, 20,000 accepted assignments:

    CONTRACTFLOW_CRASH_ASSIGNMENTS=20000 \\
        .venv/bin/pytest -q -s tests/integration/test_crash.py
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from contracts.keys import contract_id, contract_key, scope_key
from contracts.models import (
    AuditEvent,
    AuditType,
    Contract,
    ContractJob,
    ContractStatus,
    DeadLetter,
    PaymentBlock,
)
from streams.admin import client_config, create_topics
from streams.codec import Codec
from streams.devstack import ChildProcess, RedisServer
from streams.scenario import TEMPLATE, Mix, Scenario, Triple, generate
from streams.topics import Catalog, TopicSpec
from tests.integration.conftest import SettingsFactory
from tests.integration.harness import produce, workers

ASSIGNMENTS = int(os.environ.get("CONTRACTFLOW_CRASH_ASSIGNMENTS", "1500"))
SEED = 20
CANCEL_SHARE = 0.05
# A cancel is delivered before its acceptance this often, after it otherwise.
CANCEL_FIRST_SHARE = 0.35
CHUNKS = 4
# Every assignment is accepted; one delivery in ten is repeated.
MIX = Mix(accepted=1.0, declined=0.0, frontend=0.0, twice=0.10, thrice=0.0)
# Time for the whole run; the full version on a busy two-core machine needs
# most of it, the CI version a small part.
SETTLE_TIMEOUT = 60.0 + ASSIGNMENTS * 0.2
# No new output for this long while some assignment is still open: what is
# open stays open (a retry waits at most a few seconds, a rejoin about 15).
STALL_SECONDS = 60.0
# Nothing new for this long once everything is accounted for: the run is over.
QUIET_SECONDS = 5.0


@dataclass
class Workload:
    """The records to produce, chunked, and what the input alone tells."""

    scenario: Scenario
    chunks: list[list[dict[str, Any]]]
    canceled: set[Triple]
    canceled_first: set[Triple]
    # Of the assignments that must end with a contract, how many have their
    # acceptance first delivered in each chunk.
    due_by_chunk: list[int]

    @property
    def must_contract(self) -> set[Triple]:
        return self.scenario.assignments - self.canceled

    @property
    def deliveries(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


def build_workload(assignments: int, seed: int) -> Workload:
    """The seeded scenario with cancels spread among its deliveries."""
    scenario = generate(
        seed=seed,
        projects=max(20, assignments // 100),
        assignments=assignments,
        mix=MIX,
    )
    rng = Random(seed)
    events = scenario.events
    acceptances: dict[Triple, int] = {}
    for index, event in enumerate(events):
        if event["event_type"] == "AssignmentAccepted":
            acceptances.setdefault(_triple(event), index)

    # Each delivery gets a slot; a cancel takes a slot before or after the
    # first delivery of its acceptance, and the sort puts it there.
    slots = [(float(index), event) for index, event in enumerate(events)]
    canceled = set(
        rng.sample(sorted(acceptances), round(len(acceptances) * CANCEL_SHARE))
    )
    canceled_first: set[Triple] = set()
    for triple in sorted(canceled):
        accepted_at = acceptances[triple]
        cancel = _cancel_of(events[accepted_at], rng)
        if rng.random() < CANCEL_FIRST_SHARE:
            canceled_first.add(triple)
            slots.append((rng.uniform(-0.5, accepted_at - 0.5), cancel))
        else:
            slots.append((rng.uniform(accepted_at + 0.5, len(events)), cancel))
    slots.sort(key=lambda slot: slot[0])

    deliveries = [event for _, event in slots]
    size = -(-len(deliveries) // CHUNKS)
    chunks = [deliveries[n : n + size] for n in range(0, len(deliveries), size)]
    due_by_chunk = []
    seen: set[Triple] = set()
    for chunk in chunks:
        firsts = {_triple(e) for e in chunk if e["event_type"] == "AssignmentAccepted"}
        due_by_chunk.append(len(firsts - seen - canceled))
        seen |= firsts
    return Workload(scenario, chunks, canceled, canceled_first, due_by_chunk)


def _cancel_of(acceptance: dict[str, Any], rng: Random) -> dict[str, Any]:
    # Later than the acceptance by event time, whenever it is delivered, so
    # the cancel is the assignment's latest event either way.
    occurred = acceptance["occurred_at"].replace("+00:00", ".5+00:00")
    cancel = {k: v for k, v in acceptance.items() if k != "parties"}
    cancel.update(
        event_id=f"cancel-{rng.getrandbits(64):016x}",
        event_type="AssignmentCanceled",
        occurred_at=occurred,
        rationale="mission cancelled by the client",
    )
    return cancel


def _triple(event: dict[str, Any]) -> Triple:
    return (event["org_id"], event["project_id"], event["assignment_id"])


@dataclass
class Outputs:
    """What the output topics hold, read as a consumer of each would."""

    contracts: list[Contract] = field(default_factory=list)
    audits: list[AuditEvent] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    blocks: dict[str, PaymentBlock] = field(default_factory=dict)
    latest: dict[str, Contract] = field(default_factory=dict)

    def add(self, value: Any) -> None:
        if isinstance(value, Contract):
            self.contracts.append(value)
            self.latest[value.contract_id] = value
        elif isinstance(value, AuditEvent):
            self.audits.append(value)
        elif isinstance(value, DeadLetter):
            self.letters.append(value)
        elif isinstance(value, PaymentBlock):
            self.blocks[value.scope] = value


class OutputReader:
    """Reads the output topics from their start, and goes on where it left off."""

    def __init__(self, settings: Any, specs: Iterable[TopicSpec]) -> None:
        self.outputs = Outputs()
        self._codec = Codec(settings.schema_registry_url)
        self._consumer = Consumer(
            {
                **client_config(settings.broker),
                "group.id": "crash-test-reader",
                "enable.auto.commit": False,
            }
        )
        self._consumer.assign(
            [
                TopicPartition(spec.name, partition, 0)
                for spec in specs
                for partition in range(settings.partitions)
            ]
        )
        self.last_record_at = time.monotonic()

    def drain(self, seconds: float = 0.5) -> None:
        """Read whatever arrived, for at most `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            messages = self._consumer.consume(1000, 0.2)
            for message in messages:
                if message.error() is None:
                    self.outputs.add(self._codec.decode_any(message.value()))
                    self.last_record_at = time.monotonic()
            if not messages:
                return

    def wait(self, check: Callable[[Outputs], bool], timeout: float, what: str) -> None:
        """Read until `check` holds; fail, saying `what`, after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not check(self.outputs):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.drain()

    def settle(self, check: Callable[[Outputs], bool], timeout: float) -> None:
        """Read until `check` holds, or output stalls, then until it goes quiet."""
        deadline = time.monotonic() + timeout
        while not check(self.outputs):
            now = time.monotonic()
            if now > deadline or now - self.last_record_at > STALL_SECONDS:
                return  # the invariants then tell what is missing
            self.drain(2.0)
        # Whatever the replays still send arrives in the next seconds.
        while time.monotonic() - self.last_record_at < QUIET_SECONDS:
            self.drain()

    def close(self) -> None:
        self._consumer.close()


def issued(outputs: Outputs) -> int:
    return len(outputs.latest)


def test_killed_workers_and_a_redis_restart_leave_one_contract_per_acceptance(
    settings_factory: SettingsFactory, redis_server: RedisServer, tmp_path: Path
) -> None:
    # Production's attempt count, with short delays: a party-data view that
    # lags a restarted worker must not exhaust the retries of a valid job.
    settings = settings_factory(retry_max_attempts=8, retry_cap_seconds=2.0)
    catalog = Catalog(settings)
    create_topics(settings, catalog)
    workload = build_workload(ASSIGNMENTS, SEED)
    scenario = workload.scenario
    produce(settings, catalog.organizations, scenario.organizations)
    produce(settings, catalog.collaborators, scenario.collaborators)
    reader = OutputReader(
        settings,
        [catalog.contracts, catalog.audit, catalog.dlq, catalog.payment_blocks],
    )
    started = time.monotonic()
    struck_at: list[int] = []

    def fault_midway(chunk: int, fault: Callable[[], None]) -> None:
        # Struck once half of this chunk's contracts are out: the rest of the
        # chunk is still being worked on.
        before = sum(workload.due_by_chunk[:chunk])
        target = before + workload.due_by_chunk[chunk] // 2
        reader.wait(
            lambda o: issued(o) >= target, SETTLE_TIMEOUT, f"{target} contracts"
        )
        fault()
        struck_at.append(issued(reader.outputs))

    def kill_and_restart(worker: ChildProcess) -> Callable[[], None]:
        def fault() -> None:
            worker.kill()
            worker.start()

        return fault

    try:
        with workers(settings, tmp_path, count=2) as [_, victim]:
            faults = [
                kill_and_restart(victim),
                redis_server.restart,
                kill_and_restart(victim),
                None,
            ]
            for number, (chunk, fault) in enumerate(
                zip(workload.chunks, faults, strict=True)
            ):
                produce(settings, catalog.assignments, chunk)
                if fault is not None:
                    fault_midway(number, fault)
            reader.settle(lambda o: settled(workload, o), SETTLE_TIMEOUT)
        elapsed = time.monotonic() - started
    finally:
        reader.close()
        if not redis_server.running():
            redis_server.start()

    check_invariants(workload, reader.outputs, elapsed, struck_at)


def settled(workload: Workload, outputs: Outputs) -> bool:
    """Every assignment has reached an end the rules allow."""
    ends = ends_of(workload, outputs)
    return all(ends.get(t) is not None for t in workload.scenario.assignments)


def ends_of(workload: Workload, outputs: Outputs) -> dict[Triple, str | None]:
    """What became of each assignment, as the outputs tell, None if undecided."""
    contracts = contracts_by_assignment(outputs)
    skipped = {
        (a.org_id, a.project_id, a.assignment_id or "")
        for a in outputs.audits
        if a.type is AuditType.GENERATION_SKIPPED
    }
    lettered = lettered_assignments(outputs.letters)
    ends: dict[Triple, str | None] = {}
    for triple in workload.scenario.assignments:
        ids = contracts.get(triple, set())
        statuses = {outputs.latest[i].status for i in ids}
        if triple not in workload.canceled:
            ends[triple] = "contract" if statuses == {ContractStatus.ISSUED} else None
        elif statuses == {ContractStatus.VOID_REQUESTED}:
            blocked = outputs.blocks.get(scope_key(*triple))
            ends[triple] = "void" if blocked is not None and blocked.blocked else None
        elif ids:
            ends[triple] = None
        elif triple in skipped:
            ends[triple] = "skipped"
        elif triple in workload.canceled_first:
            # Cancelled before it was accepted: the acceptance was stale and
            # no job was ever made, so nothing is written for it.
            ends[triple] = "canceled_first"
        else:
            ends[triple] = None
        if ends[triple] is None and triple in lettered:
            ends[triple] = "dead_letter"
    return ends


def contracts_by_assignment(outputs: Outputs) -> dict[Triple, set[str]]:
    found: dict[Triple, set[str]] = defaultdict(set)
    for contract in outputs.contracts:
        for assignment_id in contract.assignment_ids:
            found[(contract.org_id, contract.project_id, assignment_id)].add(
                contract.contract_id
            )
    return found


def lettered_assignments(letters: list[DeadLetter]) -> set[Triple]:
    """The assignments whose event or job was dead-lettered."""
    codec = Codec()
    found: set[Triple] = set()
    for letter in letters:
        value = codec.decode_any(letter.raw)
        if isinstance(value, ContractJob):
            found |= {
                (value.org_id, value.project_id, s.terms.assignment_id)
                for s in value.assignments
            }
        elif isinstance(value, dict) and {
            "org_id",
            "project_id",
            "assignment_id",
        } <= set(value):
            found.add(_triple(value))
    return found


def check_invariants(
    workload: Workload, outputs: Outputs, elapsed: float, struck_at: list[int]
) -> None:
    scenario = workload.scenario
    ends = ends_of(workload, outputs)
    by_assignment = contracts_by_assignment(outputs)
    by_key: dict[str, set[str]] = defaultdict(set)
    for contract in outputs.contracts:
        by_key[contract.contract_key].add(contract.contract_id)
    attempted = {
        (a.contract_id, a.assignment_id)
        for a in outputs.audits
        if a.type is AuditType.GENERATION_ATTEMPT and a.outcome == "success"
    }
    outcomes = Counter(
        a.outcome for a in outputs.audits if a.type is AuditType.GENERATION_ATTEMPT
    )
    counts = {
        "assignments": len(scenario.assignments),
        "deliveries": workload.deliveries,
        "duplicate deliveries": scenario.duplicates,
        "canceled": len(workload.canceled),
        "canceled, cancel delivered first": len(workload.canceled_first),
        "faults struck at contract ids": "/".join(map(str, struck_at)),
        "contract records": len(outputs.contracts),
        "contract ids": len(outputs.latest),
        **{f"end {k}": v for k, v in sorted(Counter(ends.values()).items(), key=str)},
        "payment blocks": len(outputs.blocks),
        "dead letters": len(outputs.letters),
        "audit records": len(outputs.audits),
        **{f"attempts {k}": v for k, v in sorted(outcomes.items())},
        "seconds": round(elapsed, 1),
    }
    report = "crash suite: " + ", ".join(f"{k}={v}" for k, v in counts.items())
    print("\n" + report)

    unaccounted = sorted(t for t, end in ends.items() if end is None)
    assert not unaccounted, (
        f"{len(unaccounted)} unaccounted, e.g. {unaccounted[:3]}; {report}"
    )
    lacking = sorted(t for t in workload.must_contract if ends[t] != "contract")
    assert not lacking, (
        f"{len(lacking)} without their contract, e.g. {lacking[:3]}; {report}"
    )
    twice = {t: ids for t, ids in by_assignment.items() if len(ids) != 1}
    assert not twice, f"assignments with two contract ids: {twice}; {report}"
    split = {k: ids for k, ids in by_key.items() if len(ids) != 1}
    assert not split, f"keys with two contract ids: {split}; {report}"
    wrong = {
        t: ids
        for t, ids in by_assignment.items()
        if ids != {contract_id(contract_key(*t[:2], [t[2]], TEMPLATE))}
    }
    assert not wrong, f"contract ids not derived from their key: {wrong}; {report}"

    for contract in outputs.latest.values():
        path = Path(contract.document.uri.removeprefix("file://"))
        assert path.is_file(), f"{contract.contract_id}: no document; {report}"
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == contract.document.sha256, (
            f"{contract.contract_id}: document does not match its sha256; {report}"
        )
        assert len(data) == contract.document.size, report
        for assignment_id in contract.assignment_ids:
            assert (contract.contract_id, assignment_id) in attempted, (
                f"{contract.contract_id}: no audited attempt; {report}"
            )
