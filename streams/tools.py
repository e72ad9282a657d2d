"""What `contractflow produce` and `contractflow tail` do, apart from argparse."""

from __future__ import annotations

import base64
import importlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from contracts.errors import ContractflowError
from streams.admin import consumer_config, producer_config, wait_for_broker
from streams.settings import Settings
from streams.topics import Catalog

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
# A full local queue drains in well under a second against a live broker.
QUEUE_FULL_WAIT_SECONDS = 1.0

Decoder = Callable[[bytes], Any]


class CommandError(ContractflowError):
    """A command cannot do what it was asked to; the message says why."""


@dataclass(frozen=True)
class LineProblem:
    """An input line that was not produced, and why."""

    number: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.number}: {self.reason}"


@dataclass
class ProduceResult:
    """What `produce_lines` did: records acknowledged, lines refused, sends lost."""

    topic: str
    produced: int = 0
    problems: list[LineProblem] = field(default_factory=list)
    failed: int = 0

    @property
    def ok(self) -> bool:
        """Tell whether every line became an acknowledged record."""
        return not self.problems and not self.failed

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        """Count one delivery report from the producer."""
        if err is None:
            self.produced += 1
            return
        self.failed += 1
        log.error("delivery failed topic=%s error=%s", msg.topic(), err.str())


def resolve_topic(catalog: Catalog, name: str) -> str:
    """Return the full name of `name`, given with or without the prefix."""
    try:
        return catalog.by_name(name).name
    except KeyError:
        return name


def parse_line(text: str, key_field: str) -> tuple[str, bytes]:
    """Return the key and value of one JSON line; raise ValueError if unusable."""
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    key = record.get(key_field)
    if key is None:
        raise ValueError(f"no {key_field!r} field")
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise ValueError(f"{key_field!r} is not a string")
    # The worker accepts JSON, so the value is the line exactly as written.
    return str(key), text.encode("utf-8")


def produce_lines(
    settings: Settings,
    topic: str,
    lines: Iterable[str],
    *,
    key_field: str | None = None,
    timeout: float = 10,
    report: Callable[[LineProblem], None] = lambda problem: None,
) -> ProduceResult:
    """Produce JSON lines onto `topic`, keyed by `key_field` or the topic's own."""
    name, key_field = _produce_target(Catalog(settings), topic, key_field)
    _require_topic(settings, name, timeout)
    result = ProduceResult(name)
    producer = Producer(producer_config(settings))

    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            key, value = parse_line(text, key_field)
        except ValueError as exc:
            result.problems.append(LineProblem(number, str(exc)))
            report(result.problems[-1])
        else:
            _send(producer, name, key, value, result.on_delivery)

    result.failed += producer.flush(timeout)
    return result


def tail(
    settings: Settings,
    topic: str,
    out: TextIO,
    *,
    from_beginning: bool = False,
    idle: float | None = None,
    meta: bool = False,
    max_records: int | None = None,
    timeout: float = 10,
) -> int:
    """Write each record of `topic` to `out` as one JSON line; return the count."""
    name = resolve_topic(Catalog(settings), topic)
    partitions = _require_topic(settings, name, timeout)
    decode = _value_decoder(settings)
    consumer = Consumer(consumer_config(settings))
    # Known shortcoming: Tansu 0.6 reports the end of a partition as the base
    # offset of its last batch plus one, so on the embedded broker a tail
    # without --from-beginning first prints the rest of that batch.
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    # assign() skips the group join, which the embedded broker makes slow.
    consumer.assign([TopicPartition(name, p, start) for p in partitions])
    try:
        return _follow(consumer, out, decode, meta, idle, max_records)
    finally:
        consumer.close()


def render(msg: Message, decode: Decoder, *, meta: bool = False) -> Any:
    """Return the JSON view of a record: its value, or value and metadata."""
    raw = msg.value()
    value = decode(raw) if raw is not None else None
    if not meta:
        return value
    headers = msg.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return {
        "key": _text(msg.key()),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "headers": {name: _text(data) for name, data in pairs},
        "value": value,
    }


def decode_plain(raw: bytes) -> Any:
    """Decode JSON as is, anything else as {"raw_base64": ...}."""
    try:
        return json.loads(raw)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return {"raw_base64": base64.b64encode(raw).decode("ascii")}


def to_json_line(value: Any) -> str:
    """Serialize one decoded record: decimals as strings, bytes as base64."""
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _produce_target(
    catalog: Catalog, topic: str, key_field: str | None
) -> tuple[str, str]:
    try:
        spec = catalog.by_name(topic)
    except KeyError:
        if key_field is None:
            raise CommandError(
                f"{topic} is not a contractflow topic; give --key FIELD"
            ) from None
        return topic, key_field
    key = key_field or spec.key_field
    if key is None:
        raise CommandError(f"{spec.name} has no key field; give --key FIELD")
    return spec.name, key


def _require_topic(settings: Settings, name: str, timeout: float) -> list[int]:
    topic = wait_for_broker(settings.broker, timeout).topics.get(name)
    if topic is None or topic.error is not None:
        raise CommandError(
            f"topic {name} does not exist; create it with `contractflow topics create`"
        )
    return sorted(topic.partitions)


def _send(
    producer: Producer,
    topic: str,
    key: str,
    value: bytes,
    on_delivery: Callable[[KafkaError | None, Message], None],
) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
            break
        except BufferError:
            # The local queue is full: serve delivery reports until it drains.
            producer.poll(QUEUE_FULL_WAIT_SECONDS)
    producer.poll(0)


def _follow(
    consumer: Consumer,
    out: TextIO,
    decode: Decoder,
    meta: bool,
    idle: float | None,
    max_records: int | None,
) -> int:
    count = 0
    last_seen = time.monotonic()
    while max_records is None or count < max_records:
        msg = consumer.poll(POLL_SECONDS)
        if msg is None:
            if idle is not None and time.monotonic() - last_seen >= idle:
                break
            continue
        if msg.error() is not None:
            log.warning("consume error topic=%s error=%s", msg.topic(), msg.error())
            continue
        last_seen = time.monotonic()
        out.write(to_json_line(render(msg, decode, meta=meta)) + "\n")
        out.flush()
        count += 1
    return count


def _value_decoder(settings: Settings) -> Decoder:
    # The codec is optional here: without it, tail still shows JSON and bytes.
    try:
        module = importlib.import_module("streams.codec")
        codec = module.Codec(settings.schema_registry_url)
        to_json = module.decoded_to_json
    except (ImportError, AttributeError) as exc:
        log.debug("no codec (%s); showing values as JSON or base64", exc)
        return decode_plain

    def decode(raw: bytes) -> Any:
        try:
            return to_json(codec.decode_any(raw))
        except Exception as exc:  # a display tool shows what it cannot decode
            log.debug("codec could not decode a value: %s", exc)
            return decode_plain(raw)

    return decode


def _text(raw: bytes | str | None) -> Any:
    if raw is None or isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"raw_base64": base64.b64encode(raw).decode("ascii")}


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot show {type(value).__name__} as JSON")
