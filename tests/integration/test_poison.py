"""Poison input on the real stack: each kind is dead-lettered with its reason,
the record after it is processed, and the worker's /metrics counts the run.

One run serves both checks, since starting a worker costs a group join.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from contracts.errors import ReasonCode
from contracts.keys import contract_id, contract_key, scope_key
from contracts.models import DeadLetter, EventType, NotificationCode
from contracts.timeline import FactType
from streams.admin import create_topics, producer_config
from streams.codec import SINGLE_OBJECT_MARKER, Codec, to_json
from streams.settings import Settings
from streams.topics import Catalog, TopicSpec
from tests.factories import TEMPLATE, event
from tests.integration.conftest import CliRunner, SettingsFactory
from tests.integration.harness import Read, read_all, workers
from tests.integration.test_api import get, wait_for_web
from tests.integration.test_lifecycle import command, solo_id

# Small enough that a padded acceptance is over it, big enough for every
# valid record and output of the run.
MAX_RECORD_BYTES = 16 * 1024
# Over the limit, and over the 64 KiB a dead letter keeps of its bytes.
OVERSIZED_BYTES = 80 * 1024
RAW_KEPT_BYTES = 64 * 1024
ACCEPTED = EventType.ACCEPTED.value
BUNDLE = ("asg-b1", "asg-b2")
# Words that only ids and tenants of this run contain; no label may carry one.
RUN_WORDS = ("org-", "prj-", "mis-", "asg-", "col-", "cmd-", "bnd-", "evt-")
METRICS_WAIT_SECONDS = 30.0
HEADER_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{HEADER_TRACE}-b7ad6b7169203331-01".encode()


@dataclass(frozen=True)
class Sent:
    """A record to produce, and the event type it is counted in as, if decoded."""

    key: str | None
    raw: bytes
    counted: str | None = ACCEPTED
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Poison(Sent):
    """A record that must be dead-lettered with `reason_code`, `hint` in its reason.

    `trace_id` is the one its letter must carry: the record's own when it can
    still be read, else its traceparent's.
    """

    reason_code: str = ""
    hint: str = ""
    trace_id: str = ""


def acceptance(assignment_id: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("event_id", f"evt-{assignment_id}")
    return to_json(event(assignment_id=assignment_id, **fields))


def as_bytes(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode()


def with_rate(assignment_id: str, **rate: Any) -> dict[str, Any]:
    record = acceptance(assignment_id)
    return {**record, "rate": {**record["rate"], **rate}}


def without(assignment_id: str, field: str) -> dict[str, Any]:
    record = acceptance(assignment_id)
    del record[field]
    return record


def poisons() -> list[Poison]:
    """Every kind of bad input DESIGN §4 names, as it reaches `assignments`."""
    naive = {**acceptance("asg-naive"), "occurred_at": "2026-03-02T09:30:00"}
    padded = {**acceptance("asg-big"), "rationale": "x" * OVERSIZED_BYTES}

    def bad(
        key: str | None,
        record: dict[str, Any] | bytes,
        code: ReasonCode,
        hint: str,
        counted: str | None = None,
    ) -> Poison:
        if isinstance(record, bytes):
            return Poison(key, record, counted, reason_code=code, hint=hint)
        return Poison(
            key,
            as_bytes(record),
            counted,
            reason_code=code,
            hint=hint,
            trace_id=record["trace_id"],
        )

    return [
        bad(
            "asg-float",
            with_rate("asg-float", amount=450.0),
            ReasonCode.SCHEMA,
            "float",
        ),
        bad("asg-naive", naive, ReasonCode.SCHEMA, "occurred_at"),
        bad(
            "asg-late",
            acceptance("asg-late", end_date="2026-01-01"),
            ReasonCode.VALIDATION,
            "before start_date",
            ACCEPTED,
        ),
        bad(
            "asg-zzz",
            with_rate("asg-zzz", currency="ZZZ"),
            ReasonCode.VALIDATION,
            "ZZZ",
            ACCEPTED,
        ),
        bad(
            "asg-tpl",
            acceptance("asg-tpl", contract_template_version="nope@1"),
            ReasonCode.UNKNOWN_TEMPLATE,
            "nope@1",
            ACCEPTED,
        ),
        bad("asg-noorg", without("asg-noorg", "org_id"), ReasonCode.SCHEMA, "org_id"),
        bad(
            "asg-norate",
            without("asg-norate", "rate"),
            ReasonCode.SCHEMA,
            "rate",
            ACCEPTED,
        ),
        bad(None, acceptance("asg-nokey"), ReasonCode.NULL_KEY, "no key"),
        # Not read at all: its letter's trace id comes from the header.
        replace(
            bad("asg-big", padded, ReasonCode.TOO_LARGE, "exceeds"),
            headers=(("traceparent", TRACEPARENT),),
            trace_id=HEADER_TRACE,
        ),
        replace(
            bad("raw-text", b"plain text, not a record", ReasonCode.DECODE, "not Avro"),
            headers=(("traceparent", TRACEPARENT),),
            trace_id=HEADER_TRACE,
        ),
        bad("raw-wire", b"\x00\x01 not a record", ReasonCode.DECODE, "Confluent"),
        bad(
            "raw-avro",
            SINGLE_OBJECT_MARKER + b"\xff" * 8 + b"junk",
            ReasonCode.DECODE,
            "fingerprint",
        ),
    ]


def valid(n: int) -> Sent:
    """The good acceptance that follows the n-th poison; one of them is Avro."""
    assignment_id = f"asg-ok-{n}"
    if n == 0:
        avro = Codec().encode(event(assignment_id=assignment_id, event_id="evt-avro"))
        return Sent(assignment_id, avro)
    return Sent(assignment_id, as_bytes(acceptance(assignment_id)))


def produce_in_order(
    settings: Settings, spec: TopicSpec, records: list[Sent]
) -> list[tuple[int, int]]:
    """Produce `records` to partition 0, in order; return each one's place.

    One partition makes "the record after it" literal: a poison that stopped
    its partition would stop every good record behind it.
    """
    producer = Producer(producer_config(settings))
    places: dict[int, tuple[int, int]] = {}

    def delivered(n: int) -> Any:
        def report(error: Any, message: Any) -> None:
            assert error is None, error
            places[n] = (message.partition(), message.offset())

        return report

    for n, record in enumerate(records):
        key = record.key.encode() if record.key is not None else None
        producer.produce(
            spec.name,
            key=key,
            value=record.raw,
            headers=list(record.headers),
            partition=0,
            on_delivery=delivered(n),
        )
    assert producer.flush(30) == 0
    return [places[n] for n in range(len(records))]


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("contractflow_")
        for sample in family.samples
    }


def expected_counters(sent: list[Sent], issued: int, letters: list[str]) -> Samples:
    """What the run did, worked out from its inputs alone, as counter samples."""
    events = Counter(s.counted for s in sent if s.counted is not None)
    reasons = Counter(letters)
    notes = Counter([NotificationCode.REQUEST_REFUSED.value])  # the frontend's
    attempts = "contractflow_generation_attempts_total"
    duplicates = "contractflow_duplicates_suppressed_total"
    counters: Samples = {
        ("contractflow_contracts_issued_total", ()): issued,
        # A bundled contract audits one attempt per assignment (DESIGN §5).
        (attempts, (("outcome", "success"),)): issued - 1 + len(BUNDLE),
        (attempts, (("outcome", "duplicate"),)): 1,
        (attempts, (("outcome", "failed"),)): 0,
        (attempts, (("outcome", "skipped"),)): 0,
        (duplicates, (("stage", "intake"),)): 1,
        (duplicates, (("stage", "generate"),)): 1,
        ("contractflow_retries_parked_total", ()): 0,
        ("contractflow_voids_requested_total", ()): 0,
        ("contractflow_previews_total", ()): 0,
    }
    for name, label, values, seen in (
        ("events_in", "event_type", [*EventType, *FactType], events),
        ("dead_letters", "reason", list(ReasonCode), reasons),
        ("warnings_emitted", "code", list(NotificationCode), notes),
    ):
        for value in values:
            series = (f"contractflow_{name}_total", ((label, value.value),))
            counters[series] = seen[value.value]
    # Nothing of the run fell outside the known label values.
    for name, label in (
        ("events_in", "event_type"),
        ("dead_letters", "reason"),
        ("warnings_emitted", "code"),
        ("generation_attempts", "outcome"),
        ("duplicates_suppressed", "stage"),
    ):
        counters[(f"contractflow_{name}_total", ((label, "other"),))] = 0
    return counters


def settled_metrics(port: int, expected: Samples) -> tuple[Samples, str]:
    """Read /metrics until the expected series hold their values, or time out.

    A counter moves just after the broker acknowledged what it counts, so the
    topics may show a record a moment before /metrics does.
    """
    deadline = time.monotonic() + METRICS_WAIT_SECONDS
    while True:
        status, body = get(port, "/metrics")
        assert status == 200
        text = body.decode()
        seen = samples(text)
        if {k: seen.get(k) for k in expected} == expected:
            return seen, text
        if time.monotonic() > deadline:
            return seen, text
        time.sleep(0.5)


def bounded_label_values() -> set[str]:
    """Every label value the product may show: closed sets, and "other"."""
    return {
        *EventType,
        *FactType,
        *ReasonCode,
        *NotificationCode,
        "intake",
        "generate",
        "success",
        "duplicate",
        "failed",
        "skipped",
        "other",
    }


def listed(result: Any) -> list[list[str]]:
    """The rows of `contractflow dlq list`, split into their columns."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return [line.split() for line in lines[1:-1]]


def test_every_poison_is_dead_lettered_with_its_reason_and_the_next_record_issued(
    settings_factory: SettingsFactory, tmp_path: Path, run_cli: CliRunner
) -> None:
    settings = settings_factory(max_record_bytes=MAX_RECORD_BYTES)
    catalog = Catalog(settings)
    create_topics(settings, catalog)
    bad = poisons()
    followers = [valid(n) for n in range(len(bad))]
    again = followers[1]
    assert again.key is not None
    proposal = acceptance("asg-p", event_type=EventType.PROPOSED.value)
    sent = [
        *(Sent(a, as_bytes(acceptance(a, bundle_id="bnd-1"))) for a in BUNDLE),
        Sent("asg-p", as_bytes(proposal), EventType.PROPOSED.value),
        Sent("asg-front", as_bytes(acceptance("asg-front", source="frontend"))),
        *(record for pair in zip(bad, followers, strict=True) for record in pair),
        # The same delivery twice: the intake's duplicate.
        again,
        # Accepted again on the same terms: re-enqueued, the generator's duplicate.
        Sent(again.key, as_bytes(acceptance(again.key, event_id="evt-2", at=5))),
    ]
    places = produce_in_order(settings, catalog.assignments, sent)
    mixed = command(
        "cmd-mixed",
        "GenerateContract",
        assignment_ids=[
            BUNDLE[0],
            {"assignment_id": BUNDLE[1], "org_id": "org-b", "project_id": "prj-1"},
        ],
    )
    bundled = command("cmd-bundle", "GenerateContract", assignment_ids=list(BUNDLE))
    commands = [
        Sent("cmd-mixed", as_bytes(mixed)),
        Sent("cmd-bundle", as_bytes(bundled)),
    ]
    bundle_id = contract_id(contract_key("org-a", "prj-1", list(BUNDLE), TEMPLATE))
    wanted = {solo_id(str(f.key)) for f in followers} | {bundle_id}
    repeated = solo_id(again.key)
    expected = expected_counters(
        sent, len(wanted), [p.reason_code for p in bad] + ["TENANT_MISMATCH"]
    )

    def all_issued(records: list[Read]) -> bool:
        keys = [r.key for r in records]
        return wanted <= set(keys) and keys.count(repeated) >= 2

    with workers(settings, tmp_path) as [worker]:
        # Bundle members must be accepted before the command naming them.
        scopes = {scope_key("org-a", "prj-1", a) for a in BUNDLE}
        read_all(
            settings,
            catalog.assignment_states,
            until=lambda r: scopes <= {x.key for x in r},
        )
        command_places = produce_in_order(settings, catalog.commands, commands)
        contracts = read_all(settings, catalog.contracts, until=all_issued)
        letters = read_all(
            settings, catalog.dlq, until=lambda r: len(r) >= len(bad) + 1
        )
        port = int((worker.env or {})["CONTRACTFLOW_WEB_PORT"])
        wait_for_web(port)
        counters, text = settled_metrics(port, expected)
        health, ready = get(port, "/healthz"), get(port, "/readyz")
        schema_rows = listed(
            run_cli(settings, "dlq", "list", "--reason", "SCHEMA", "--org", "org-a")
        )
        tenant_rows = listed(
            run_cli(
                settings, "dlq", "list", "--reason", "TENANT_MISMATCH", "--org", "org-a"
            )
        )

    # Every good record is issued once; no poison, proposal or frontend one is.
    assert {r.key for r in contracts} == wanted
    covering: dict[str, set[str]] = {}
    for record in contracts:
        for assignment_id in record.value.assignment_ids:
            covering.setdefault(assignment_id, set()).add(record.value.contract_id)
    assert covering == {
        **{str(f.key): {solo_id(str(f.key))} for f in followers},
        **{a: {bundle_id} for a in BUNDLE},
    }

    # Every poison is dead-lettered where it came from, with its reason and bytes.
    by_place = {
        (r.value.source_topic, r.value.partition, r.value.offset): r
        for r in letters
        if isinstance(r.value, DeadLetter)
    }
    assert len(by_place) == len(letters) == len(bad) + 1
    poisoned = [
        (catalog.assignments.name, p, place)
        for p, place in zip(sent, places, strict=True)
        if isinstance(p, Poison)
    ]
    mixed_poison = Poison(
        "cmd-mixed",
        as_bytes(mixed),
        None,
        reason_code=ReasonCode.TENANT_MISMATCH,
        hint="org-b",
        trace_id=mixed["trace_id"],
    )
    poisoned.append((catalog.commands.name, mixed_poison, command_places[0]))
    for topic, poison, (partition, offset) in poisoned:
        read = by_place[(topic, partition, offset)]
        letter = read.value
        assert (letter.reason_code, read.key, letter.key, letter.trace_id) == (
            poison.reason_code,
            poison.key or "null-key",
            poison.key,
            poison.trace_id,
        )
        assert poison.hint in letter.reason, letter.reason
        assert letter.raw == poison.raw[:RAW_KEPT_BYTES]
        assert letter.raw_size == len(poison.raw)
        assert letter.raw_sha256 == hashlib.sha256(poison.raw).hexdigest()
    oversized = next(p for _, p, _ in poisoned if p.reason_code == "TOO_LARGE")
    assert len(oversized.raw) > RAW_KEPT_BYTES > MAX_RECORD_BYTES

    # The worker counted exactly what the run did, under bounded label values.
    assert {k: counters.get(k) for k in expected} == expected
    allowed = bounded_label_values()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for name, value in sample.labels.items():
                assert name == "le" or value in allowed, (sample.name, value)
                assert not any(word in value for word in RUN_WORDS), value
    assert health[0] == 200 and json.loads(health[1]) == {"alive": True}
    assert ready[0] == 200 and json.loads(ready[1])["ready"] is True

    # `dlq list` narrows to one reason and one tenant, read from the raw record.
    assert {row[1] for row in schema_rows} == {"SCHEMA"}
    assert sorted(row[3] for row in schema_rows) == [
        "asg-float",
        "asg-naive",
        "asg-norate",
    ]
    assert [row[1:4] for row in tenant_rows] == [
        ["TENANT_MISMATCH", catalog.commands.name, "cmd-mixed"]
    ]
