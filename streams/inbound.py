"""Reading one input record: guards, decoding and trace context."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from contracts.deadletters import Origin
from contracts.errors import PermanentError, ReasonCode
from contracts.models import Record
from streams.codec import Codec

R = TypeVar("R", bound=Record)

Headers = list[tuple[str, bytes]]


def origin_of(message: Any) -> Origin:
    """The origin of a Faust message."""
    return Origin(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
    )


def decode(codec: Codec, origin: Origin, model: type[R], *, max_bytes: int) -> R:
    """Decode a keyed record of at most `max_bytes`, or raise a PermanentError."""
    if origin.key is None:
        raise PermanentError("record has no key", reason_code=ReasonCode.NULL_KEY)
    size = len(origin.value or b"")
    if size > max_bytes:
        raise PermanentError(
            f"record of {size} bytes exceeds the limit of {max_bytes}",
            reason_code=ReasonCode.TOO_LARGE,
        )
    return codec.decode(origin.value, model)


def trace_headers(headers: Mapping[str, bytes] | Iterable[Any] | None) -> Headers:
    """The headers to carry onto outputs: the W3C `traceparent`, if any."""
    for name, value in _pairs(headers):
        if name.lower() == "traceparent" and value:
            return [("traceparent", bytes(value))]
    return []


def trace_id_from(headers: Headers) -> str:
    """The trace id inside a `traceparent` header (version-traceid-spanid-flags)."""
    for _, value in headers:
        parts = value.decode("ascii", errors="replace").split("-")
        if len(parts) == 4 and len(parts[1]) == 32:
            return parts[1]
    return ""


def failed_trace_id(codec: Codec, raw: bytes | None, headers: Headers) -> str:
    """The trace id a dead letter keeps: the record's own, else its traceparent's.

    The record failed, so it is read again on a best-effort basis, as the
    intake reads a good one: its `trace_id` field wins over the header.
    """
    try:
        record: Any = codec.decode_any(raw)
    except Exception:
        # This runs while a record is being given up on: nothing may stop
        # its dead letter from being sent, least of all the bytes that failed.
        record = None
    if isinstance(record, Mapping):
        field = record.get("trace_id")
    else:
        field = getattr(record, "trace_id", None)
    if isinstance(field, str) and field:
        return field
    return trace_id_from(headers)


def _pairs(headers: Mapping[str, bytes] | Iterable[Any] | None) -> Iterable[Any]:
    if not headers:
        return ()
    if isinstance(headers, Mapping):
        return headers.items()
    return headers
