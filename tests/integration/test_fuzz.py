"""Arbitrary records on every input topic never stop a worker.

One worker runs for the whole test; hypothesis draws batches of records (any
bytes, any JSON, records that are almost valid, oversized ones, keyless ones
where a key is optional) and produces them to every input topic. After each
batch, a marker goes to every partition of `assignments` and
`contract.commands`; once every marker is processed, so is every record
before it. Then:

- each record there that cannot be decoded is in `contract.dlq` with its
  raw bytes and its reason code; one that decodes was processed (it may have
  been dead-lettered later, for a rule it breaks, or issued);
- no record at all was dead-lettered for an unexpected error;
- nothing from `executions`, `invoices`, `payments`, `organizations` or
  `collaborators` is dead-lettered: the worker reads the first three only
  when a timeline is asked for, and the party views decode on read;
- the worker process is alive and answers /healthz.

After the fuzz, a valid acceptance is still issued, and one whose
organization's reference record is garbage is dead-lettered MISSING_PARTY.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from contracts.commands import Command, DraftAssignment
from contracts.deadletters import RAW_CAP_BYTES
from contracts.errors import PermanentError, ReasonCode
from contracts.keys import contract_id, contract_key, scope_key
from contracts.lifecycle import LedgerEntry
from contracts.models import (
    AssignmentEvent,
    Contract,
    DeadLetter,
    PreviewReply,
    Record,
)
from streams.admin import client_config, create_topics, producer_config
from streams.codec import Codec, to_json
from streams.devstack import ChildProcess
from streams.settings import Settings
from streams.topics import Catalog, TopicSpec
from tests.factories import COLLABORATOR, ORGANIZATION, TEMPLATE, event
from tests.integration.conftest import SettingsFactory
from tests.integration.harness import workers
from tests.integration.test_api import get, wait_for_web
from tests.strategies import json_values

# Small, so that oversized records stay cheap to draw, yet above every valid
# record and output of the run.
MAX_RECORD_BYTES = 6 * 1024
EXAMPLES = 20
# Generous: a batch that trips the commands agent's waits for a missing
# assignment or contract (7 s) still settles well within it.
SETTLE_SECONDS = 60.0
VALID_EVENT = to_json(event())
VALID_PREVIEW: dict[str, Any] = {
    "command_id": "cmd-preview",
    "command_type": "RequestDraftPreview",
    "issued_at": "2026-03-02T10:00:00+00:00",
    "org_id": "org-a",
    "project_id": "prj-1",
    "request_id": "req-preview",
    "assignment": {k: VALID_EVENT[k] for k in DraftAssignment.model_fields},
}
DELETE_TOPICS = ("assignments", "commands", "executions", "invoices", "payments")
COMPACTED_TOPICS = ("organizations", "collaborators")
DECODED_AS: dict[str, type[Record]] = {
    "assignments": AssignmentEvent,
    "commands": Command,
}


@dataclass(frozen=True)
class Fuzz:
    """One drawn record: the catalog attribute of its topic, key and value."""

    topic: str
    key: bytes | None
    value: bytes | None


def near(valid: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """`valid` with one field replaced by any JSON value, or dropped."""
    return st.builds(
        lambda name, value, drop: (
            {k: v for k, v in valid.items() if k != name}
            if drop
            else {**valid, name: value}
        ),
        st.sampled_from(sorted(valid)),
        json_values,
        st.booleans(),
    )


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


values = st.one_of(
    st.binary(max_size=120),
    st.binary(max_size=40).map(lambda b: b"\xc3\x01" + b),
    st.binary(max_size=40).map(lambda b: b"\x00" + b),
    json_values.map(_dumps),
    near(VALID_EVENT).map(_dumps),
    near(VALID_PREVIEW).map(_dumps),
    st.integers(MAX_RECORD_BYTES + 1, MAX_RECORD_BYTES + 200).map(lambda n: b"{" * n),
)
ids = st.text(min_size=1, max_size=16).map(str.encode)
records = st.one_of(
    st.builds(
        Fuzz,
        st.sampled_from(DELETE_TOPICS),
        st.none() | ids,
        st.none() | values,
    ),
    # Keyed, and never a key of the reference data the test itself uses.
    st.builds(
        Fuzz,
        st.sampled_from(COMPACTED_TOPICS),
        ids.map(lambda k: b"fuzz-" + k),
        values,
    ),
)


# One batch is always drawn: a record on every topic, a tombstone, a keyless
# record, and an acceptance at an instant that UTC cannot hold.
EVERY_TOPIC = [
    *(Fuzz(topic, b"fuzz-key", b"\xff\xfe") for topic in DELETE_TOPICS),
    *(Fuzz(topic, b"fuzz-key", b'{"x": 1}') for topic in COMPACTED_TOPICS),
    Fuzz("assignments", b"fuzz-key", None),
    Fuzz("commands", None, _dumps(VALID_PREVIEW)),
    Fuzz(
        "assignments",
        b"asg-1",
        _dumps({**VALID_EVENT, "occurred_at": "0001-01-01T00:00:00+14:00"}),
    ),
]


def expected_reason(record: Fuzz, codec: Codec) -> str | None:
    """The reason code a record must be dead-lettered with; None if it decodes."""
    if record.key is None:
        return ReasonCode.NULL_KEY.value
    if len(record.value or b"") > MAX_RECORD_BYTES:
        return ReasonCode.TOO_LARGE.value
    try:
        codec.decode(record.value, DECODED_AS[record.topic])
    except PermanentError as error:
        return error.reason_code.value
    return None


class Outputs:
    """Follows the topics that tell what became of the input."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.letters: dict[tuple[str, int, int], DeadLetter] = {}
        self.states: set[str] = set()
        self.previews: set[str] = set()
        self.contracts: dict[str, Contract] = {}
        self._codec = Codec()
        self._consumer = Consumer(
            {
                **client_config(settings.broker),
                "group.id": "fuzz-reader",
                "enable.auto.commit": False,
            }
        )
        specs = (
            catalog.dlq,
            catalog.assignment_states,
            catalog.previews,
            catalog.contracts,
        )
        self._consumer.assign(
            [
                TopicPartition(spec.name, p, 0)
                for spec in specs
                for p in range(settings.partitions)
            ]
        )

    def wait(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + SETTLE_SECONDS
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            for message in self._consumer.consume(500, 0.2):
                if message.error() is None:
                    self._add(self._codec.decode_any(message.value()))

    def _add(self, value: Any) -> None:
        if isinstance(value, DeadLetter):
            self.letters[(value.source_topic, value.partition, value.offset)] = value
        elif isinstance(value, LedgerEntry):
            self.states.add(value.scope)
        elif isinstance(value, PreviewReply):
            self.previews.add(value.request_id)
        elif isinstance(value, Contract):
            self.contracts[value.contract_id] = value

    def close(self) -> None:
        self._consumer.close()


class Sender:
    """Produces records and tells where each one landed."""

    def __init__(self, settings: Settings) -> None:
        self._producer = Producer(producer_config(settings))

    def send(
        self, topic: TopicSpec, key: bytes | None, value: bytes | None, **kw: Any
    ) -> Callable[[], tuple[int, int]]:
        place: list[tuple[int, int]] = []

        def delivered(error: Any, message: Any) -> None:
            assert error is None, error
            place.append((message.partition(), message.offset()))

        self._producer.produce(
            topic.name, key=key, value=value, on_delivery=delivered, **kw
        )
        return lambda: place[0]

    def flush(self) -> None:
        assert self._producer.flush(30) == 0


def test_arbitrary_records_on_every_input_topic_never_stop_a_worker(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    settings = settings_factory(max_record_bytes=MAX_RECORD_BYTES)
    catalog = Catalog(settings)
    create_topics(settings, catalog)
    codec = Codec()
    sender = Sender(settings)
    outputs = Outputs(settings, catalog)
    rounds = iter(range(1_000_000))
    drawn: list[Fuzz] = []

    with workers(settings, tmp_path) as [worker]:
        port = int((worker.env or {})["CONTRACTFLOW_WEB_PORT"])
        wait_for_web(port)

        @settings_for_live_worker
        @given(batch=st.lists(records, min_size=1, max_size=6))
        @example(batch=EVERY_TOPIC)
        def fuzz(batch: list[Fuzz]) -> None:
            drawn.extend(batch)
            places = [
                sender.send(getattr(catalog, r.topic), r.key, r.value) for r in batch
            ]
            markers = send_markers(sender, catalog, settings, next(rounds))
            sender.flush()
            outputs.wait(
                lambda: markers <= outputs.states | outputs.previews,
                "the markers behind the batch",
            )
            check_batch(batch, [p() for p in places], outputs, catalog, codec)
            check_alive(worker, port)

        try:
            fuzz()
            issued, refused = send_after_fuzz(sender, catalog)
            outputs.wait(
                lambda: (
                    issued in outputs.contracts
                    and any(
                        letter.reason_code == ReasonCode.MISSING_PARTY.value
                        and letter.contract_key == refused
                        for letter in outputs.letters.values()
                    )
                ),
                "a valid acceptance after the fuzz",
            )
            check_alive(worker, port)
        finally:
            outputs.close()

    print(f"\nfuzz: {len(drawn)} records, {len(outputs.letters)} dead letters")


settings_for_live_worker = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def send_markers(
    sender: Sender, catalog: Catalog, settings: Settings, round_: int
) -> set[str]:
    """A record every partition processes only after what came before it."""
    markers = set()
    for partition in range(settings.partitions):
        name = f"marker-{round_}-{partition}"
        proposal = to_json(
            event("AssignmentProposed", event_id=name, assignment_id=name)
        )
        sender.send(
            catalog.assignments, name.encode(), _dumps(proposal), partition=partition
        )
        preview = {**VALID_PREVIEW, "command_id": name, "request_id": name}
        sender.send(
            catalog.commands, name.encode(), _dumps(preview), partition=partition
        )
        markers |= {scope_key("org-a", "prj-1", name), name}
    return markers


def check_batch(
    batch: list[Fuzz],
    places: list[tuple[int, int]],
    outputs: Outputs,
    catalog: Catalog,
    codec: Codec,
) -> None:
    owed = {}
    for record, (partition, offset) in zip(batch, places, strict=True):
        where = (getattr(catalog, record.topic).name, partition, offset)
        if record.topic in DECODED_AS:
            reason = expected_reason(record, codec)
            if reason is not None:
                owed[where] = (record, reason)
    # The letters were acked before the markers behind them were processed,
    # yet this reader may see the marker's partition first.
    outputs.wait(lambda: owed.keys() <= outputs.letters.keys(), "dead letters")

    for where, (record, reason) in owed.items():
        letter = outputs.letters[where]
        raw = record.value or b""
        assert letter.reason_code == reason, (where, letter.reason)
        assert letter.raw == raw[:RAW_CAP_BYTES] and letter.raw_size == len(raw)
        assert letter.key == (
            record.key.decode(errors="replace") if record.key else None
        )
    unexpected = [
        letter
        for letter in outputs.letters.values()
        if letter.reason.startswith("unexpected error")
    ]
    assert not unexpected, unexpected
    views = {
        getattr(catalog, name).name for name in (*DELETE_TOPICS, *COMPACTED_TOPICS)
    } - {catalog.assignments.name, catalog.commands.name}
    assert not [w for w in outputs.letters if w[0] in views]


def check_alive(worker: ChildProcess, port: int) -> None:
    assert worker.running(), worker.log_tail()
    status, body = get(port, "/healthz")
    assert status == 200 and json.loads(body) == {"alive": True}, body


def send_after_fuzz(sender: Sender, catalog: Catalog) -> tuple[str, str]:
    """A valid acceptance relying on reference data, and one whose data is garbage.

    Return the contract id the first must get, and the key of the second.
    """
    sender.send(
        catalog.organizations,
        b"org-after",
        _dumps({"org_id": "org-after", **to_json(ORGANIZATION)}),
    )
    sender.send(catalog.organizations, b"org-garbage", b"\xc3\x01garbage")
    sender.send(
        catalog.collaborators,
        b"col-after",
        _dumps({"collaborator_id": "col-after", **to_json(COLLABORATOR)}),
    )
    sender.flush()
    for org_id in ("org-after", "org-garbage"):
        acceptance = event(
            event_id=f"after-{org_id}",
            org_id=org_id,
            assignment_id="asg-after",
            collaborator_id="col-after",
            parties=None,
        )
        sender.send(catalog.assignments, b"asg-after", _dumps(to_json(acceptance)))
    sender.flush()
    return (
        contract_id(contract_key("org-after", "prj-1", ["asg-after"], TEMPLATE)),
        contract_key("org-garbage", "prj-1", ["asg-after"], TEMPLATE),
    )
