"""What is kept of a failed input's trace context, for its dead letter."""

from __future__ import annotations

import json

from streams.codec import Codec, to_json
from streams.inbound import Headers, failed_trace_id
from tests.factories import event

FIELD_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HEADER_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT: Headers = [
    ("traceparent", f"00-{HEADER_TRACE}-b7ad6b7169203331-01".encode())
]


def test_a_readable_record_gives_the_trace_id_of_its_own_field() -> None:
    late = {**to_json(event()), "end_date": "2026-01-01"}

    assert failed_trace_id(Codec(), json.dumps(late).encode(), TRACEPARENT) == (
        FIELD_TRACE
    )


def test_an_avro_record_gives_the_trace_id_of_its_field() -> None:
    raw = Codec().encode(event(trace_id=FIELD_TRACE))

    assert failed_trace_id(Codec(), raw, []) == FIELD_TRACE


def test_unreadable_bytes_fall_back_to_the_traceparent_header() -> None:
    assert failed_trace_id(Codec(), b"not a record", TRACEPARENT) == HEADER_TRACE


def test_a_record_without_a_usable_trace_id_falls_back_to_the_header() -> None:
    for trace_id in ("", 17, None):
        raw = json.dumps({"event_id": "e-1", "trace_id": trace_id}).encode()

        assert failed_trace_id(Codec(), raw, TRACEPARENT) == HEADER_TRACE


def test_without_a_field_or_a_header_there_is_no_trace_id() -> None:
    assert failed_trace_id(Codec(), b"not a record", []) == ""
    assert failed_trace_id(Codec(), None, []) == ""
