"""The benchmark's baselines, each run as its own process.

    python -m streams.bench_baselines KIND --broker HOST:PORT --source TOPIC ...

Each reads the same JSON acceptances and does less than the pipeline does,
so that the pipeline's rate can be read against what the same broker, the
same machine and the same events allow:

- `faust-naive`: a Faust agent as the Faust documentation writes one: JSON
  records, a table write and one awaited `topic.send` per event;
- `faust-bare`: a Faust agent that only consumes;
- `quix`: a Quix Streams application that deduplicates in its state store
  and produces one record per event;
- `confluent`: a confluent-kafka loop that deduplicates in a dict, produces
  one record per event and flushes each batch.

Each counts the events it has processed in a small JSON file (`--progress`),
with the wall-clock times of the first and the latest one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faust

from streams.admin import consumer_config, producer_config
from streams.devstack import exit_on_sigterm
from streams.settings import EMBEDDED_TIMINGS, Settings

# The progress file is rewritten every this many events, and at the end.
PROGRESS_EVERY = 500
CONSUME_BATCH = 500


class Progress:
    """Counts processed events; writes count, first and last times to a file."""

    def __init__(self, path: Path, expect: int) -> None:
        self.path = path
        self.expect = expect
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None

    def begin(self) -> None:
        """Note that the first event has been consumed, before processing it."""
        if self.first is None:
            self.first = time.time()

    def tick(self, events: int = 1) -> None:
        """Count `events` more processed events."""
        now = time.time()
        before = self.count
        self.count += events
        self.last = now
        crossed = before // PROGRESS_EVERY != self.count // PROGRESS_EVERY
        if crossed or self.count >= self.expect:
            self.write()

    def write(self) -> None:
        """Replace the file atomically, so a reader never sees half of it."""
        body = {"count": self.count, "first": self.first, "last": self.last}
        partial = self.path.with_suffix(".part")
        partial.write_text(json.dumps(body))
        os.replace(partial, self.path)


def read_progress(path: Path) -> dict[str, Any] | None:
    """Return what a baseline last wrote, or None before its first write."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class AcceptedEvent(faust.Record, serializer="json"):
    """The fields of an acceptance that the naive agent uses; others are kept."""

    event_id: str
    org_id: str
    project_id: str
    assignment_id: str
    collaborator_id: str
    role: str
    start_date: str
    end_date: str
    contract_template_version: str


class IssuedRecord(faust.Record, serializer="json"):
    """What the naive agent sends for each event: far less than a contract."""

    scope: str
    event_id: str
    collaborator_id: str
    role: str
    start_date: str
    end_date: str
    contract_template_version: str


def faust_app(args: argparse.Namespace) -> faust.App:
    """Return a Faust app with the embedded broker's group timings."""
    return faust.App(
        args.group,
        broker=f"kafka://{args.broker}",
        store="memory://",
        datadir=str(args.datadir),
        autodiscover=False,
        web_port=args.web_port,
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        topic_partitions=args.partitions,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=EMBEDDED_TIMINGS["session_timeout_seconds"],
        broker_rebalance_timeout=EMBEDDED_TIMINGS["rebalance_timeout_seconds"],
        broker_heartbeat_interval=EMBEDDED_TIMINGS["heartbeat_interval_seconds"],
    )


def run_faust_naive(args: argparse.Namespace, progress: Progress) -> None:
    """Run the documentation-style agent: table write and send per event."""
    app = faust_app(args)
    source = app.topic(args.source, value_type=AcceptedEvent)
    sink = app.topic(args.sink, value_type=IssuedRecord)
    seen = app.Table("seen", partitions=args.partitions)

    @app.agent(source)
    async def issue(stream: Any) -> None:
        async for event in stream:
            progress.begin()
            scope = f"{event.org_id}/{event.project_id}/{event.assignment_id}"
            if seen.get(scope) != event.event_id:
                seen[scope] = event.event_id
                await sink.send(key=scope, value=_issued(scope, event))
            progress.tick()

    faust.Worker(app, loglevel="INFO").execute_from_commandline()


def _issued(scope: str, event: AcceptedEvent) -> IssuedRecord:
    return IssuedRecord(
        scope=scope,
        event_id=event.event_id,
        collaborator_id=event.collaborator_id,
        role=event.role,
        start_date=event.start_date,
        end_date=event.end_date,
        contract_template_version=event.contract_template_version,
    )


def run_faust_bare(args: argparse.Namespace, progress: Progress) -> None:
    """Run an agent that only consumes raw records."""
    app = faust_app(args)
    source = app.topic(args.source, key_serializer="raw", value_serializer="raw")

    @app.agent(source)
    async def consume(stream: Any) -> None:
        async for _ in stream:
            progress.begin()
            progress.tick()

    faust.Worker(app, loglevel="INFO").execute_from_commandline()


def run_quix(args: argparse.Namespace, progress: Progress) -> None:
    """Run a Quix Streams application: dedupe in state, one record per event."""
    from quixstreams import Application, State

    settings = _settings(args)
    timings = consumer_config(settings, args.group)
    app = Application(
        broker_address=args.broker,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=str(args.datadir),
        consumer_extra_config={
            name: timings[name]
            for name in (
                "session.timeout.ms",
                "max.poll.interval.ms",
                "heartbeat.interval.ms",
            )
        },
        producer_extra_config={"partitioner": "murmur2_random"},
    )

    def first_time(event: dict[str, Any], state: State) -> bool:
        progress.begin()
        if state.get(event["event_id"]) is not None:
            return False
        state.set(event["event_id"], True)
        return True

    frame = app.dataframe(app.topic(args.source, value_deserializer="json"))
    frame = frame.filter(first_time, stateful=True).apply(_issued_dict)
    frame = frame.to_topic(app.topic(args.sink, value_serializer="json"))
    frame.update(lambda _: progress.tick())
    app.run()


def _issued_dict(event: dict[str, Any]) -> dict[str, Any]:
    scope = f"{event['org_id']}/{event['project_id']}/{event['assignment_id']}"
    return {"scope": scope, **{k: event[k] for k in _ISSUED_FIELDS}}


_ISSUED_FIELDS = (
    "event_id",
    "collaborator_id",
    "role",
    "start_date",
    "end_date",
    "contract_template_version",
)


def run_confluent(args: argparse.Namespace, progress: Progress) -> None:
    """Run a plain loop: consume a batch, dedupe, produce, flush, commit."""
    from confluent_kafka import Consumer, Producer

    settings = _settings(args)
    consumer = Consumer(consumer_config(settings, args.group))
    producer = Producer(producer_config(settings))
    seen: dict[str, str] = {}
    consumer.subscribe([args.source])
    try:
        while True:
            batch = [
                m
                for m in consumer.consume(CONSUME_BATCH, 0.5)
                if m.error() is None and m.value() is not None
            ]
            if not batch:
                continue
            progress.begin()
            for message in batch:
                _dedupe_and_produce(message.value() or b"", seen, producer, args.sink)
            producer.flush()
            consumer.commit(asynchronous=True)
            progress.tick(len(batch))
    finally:
        consumer.close()


def _dedupe_and_produce(
    raw: bytes, seen: dict[str, str], producer: Any, sink: str
) -> None:
    event = json.loads(raw)
    issued = _issued_dict(event)
    if seen.get(issued["scope"]) == event["event_id"]:
        return
    seen[issued["scope"]] = event["event_id"]
    producer.produce(sink, key=issued["scope"].encode(), value=json.dumps(issued))
    producer.poll(0)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.model_validate(
        {"broker": args.broker, "partitions": args.partitions, **EMBEDDED_TIMINGS}
    )


RUNNERS: dict[str, Callable[[argparse.Namespace, Progress], None]] = {
    "faust-naive": run_faust_naive,
    "faust-bare": run_faust_bare,
    "quix": run_quix,
    "confluent": run_confluent,
}


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of a baseline's command line."""
    parser = argparse.ArgumentParser(prog="python -m streams.bench_baselines")
    parser.add_argument("kind", choices=sorted(RUNNERS))
    parser.add_argument("--broker", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--progress", type=Path, required=True)
    parser.add_argument("--datadir", type=Path, required=True)
    parser.add_argument("--web-port", type=int, default=0)
    parser.add_argument("--partitions", type=int, default=8)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one baseline until it is stopped."""
    args = build_parser().parse_args(argv)
    exit_on_sigterm()
    RUNNERS[args.kind](args, Progress(args.progress, args.expect))
    return 0


if __name__ == "__main__":
    sys.exit(main())
