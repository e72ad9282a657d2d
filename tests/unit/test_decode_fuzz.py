"""Any bytes read from an input topic decode to a record or to a PermanentError.

Whatever fails to decode must become a dead letter that itself encodes: a
decode that raised anything else would be dead-lettered as an unexpected
error (EXHAUSTED) or, in the read-time views, escape their error handling.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from contracts.commands import Command
from contracts.deadletters import RAW_CAP_BYTES, Origin, dead_letter
from contracts.errors import PermanentError, ReasonCode
from contracts.models import (
    AssignmentEvent,
    CollaboratorRecord,
    ContractJob,
    OrganizationRecord,
    Record,
)
from contracts.timeline import FactEvent
from streams.codec import Codec, to_json
from tests.factories import event
from tests.strategies import json_values

INPUT_MODELS: tuple[type[Record], ...] = (
    AssignmentEvent,
    Command,
    FactEvent,
    OrganizationRecord,
    CollaboratorRecord,
    ContractJob,
)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
VALID_EVENT = to_json(event())

# Valid events with one field given a value of any JSON type: the decoder's
# hardest inputs are the records that almost pass.
near_valid = st.builds(
    lambda name, value: {**VALID_EVENT, name: value},
    st.sampled_from(sorted(VALID_EVENT)),
    json_values,
)
encoded = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=60).map(lambda b: b"\xc3\x01" + b),
    st.binary(max_size=60).map(lambda b: b"\x00" + b),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_valid.map(lambda v: json.dumps(v).encode()),
)


def decode_or_dead_letter(codec: Codec, raw: bytes, model: type[Record]) -> None:
    try:
        codec.decode(raw, model)
    except PermanentError as error:
        origin = Origin("assignments", 0, 7, b"key", raw)
        letter = dead_letter(origin, error, now=NOW)
        assert letter.reason_code in {c.value for c in ReasonCode}
        assert (
            codec.decode(codec.encode(letter), type(letter)).raw == raw[:RAW_CAP_BYTES]
        )


@pytest.mark.parametrize("model", INPUT_MODELS, ids=lambda m: m.__name__)
# No deadline: a loaded CI machine must not turn a slow example into a failure.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=encoded)
@example(
    raw=json.dumps({**VALID_EVENT, "occurred_at": "0001-01-01T00:00:00+14:00"}).encode()
)
def test_any_input_decodes_or_becomes_an_encodable_dead_letter(
    model: type[Record], raw: bytes
) -> None:
    decode_or_dead_letter(Codec(), raw, model)


@pytest.mark.parametrize(
    ("model", "event_type"),
    [(AssignmentEvent, "AssignmentAccepted"), (FactEvent, "InvoiceIssued")],
    ids=["AssignmentEvent", "FactEvent"],
)
@pytest.mark.parametrize(
    "instant", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
)
def test_an_instant_beyond_the_range_of_utc_is_a_schema_error(
    model: type[Record], event_type: str, instant: str
) -> None:
    fields = {**VALID_EVENT, "event_type": event_type, "occurred_at": instant}
    raw = json.dumps(fields)
    with pytest.raises(PermanentError) as raised:
        Codec().decode(raw.encode(), model)
    assert raised.value.reason_code is ReasonCode.SCHEMA
    assert "occurred_at" in raised.value.reason
