"""The codec: Avro both ways, JSON in, and nothing but permanent errors on bad input."""

from __future__ import annotations

import base64
import io
import json
import struct
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, get_args

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import given
from hypothesis import strategies as st

from contracts.aggregation import InputKind, WindowInput
from contracts.commands import Command
from contracts.errors import DecodeError, PermanentError, SchemaError
from contracts.lifecycle import AssignmentState, BundleLink, LedgerEntry
from contracts.models import (
    AssignmentEvent,
    AssignmentSnapshot,
    AuditEvent,
    AuditType,
    CollaboratorParty,
    CollaboratorRecord,
    Contract,
    ContractJob,
    ContractParties,
    ContractStatus,
    DeadLetter,
    Document,
    EventType,
    JobKind,
    NamedCollaborator,
    Notification,
    NotificationCode,
    OrganizationParty,
    OrganizationRecord,
    Parties,
    PaymentBlock,
    PreviewReply,
    Rate,
    RateUnit,
    Record,
    Severity,
    Terms,
)
from contracts.timeline import FactEvent, FactType, Money
from schemas import MODELS, all_schemas, schema_for
from streams.codec import Codec, decoded_to_json, to_json

DESIGN_EXAMPLE = """
{"event_id": "9b0c6f3e-3d1e-4a51-9a57-0d3f3c6f1a01",
 "event_type": "AssignmentAccepted",
 "occurred_at": "2026-03-02T09:30:00+00:00",
 "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
 "actor_id": "user-17", "source": "backend",
 "org_id": "org-a", "project_id": "prj-1", "mission_id": "mis-1",
 "assignment_id": "asg-1", "collaborator_id": "col-1",
 "role": "Backend developer",
 "rate": {"amount": "450.00", "currency": "EUR", "unit": "DAY"},
 "start_date": "2026-03-09", "end_date": "2026-06-26",
 "contract_template_version": "freelance-fr@1",
 "parties": {
   "organization": {"legal_name": "Org A SAS", "registration_id": "552100554",
                    "address": "12 rue de la Paix, 75002 Paris, FR",
                    "representative": "Claire Martin"},
   "collaborator": {"legal_name": "Studio Col-1",
                    "registration_id": "90123456700018",
                    "address": "3 quai des Chartrons, 33000 Bordeaux, FR",
                    "email": "studio@example.org"}}}
"""

ISSUED_AT = datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))


def organization() -> OrganizationParty:
    return OrganizationParty(
        legal_name="Org A SAS",
        registration_id="552100554",
        address="12 rue de la Paix, 75002 Paris, FR",
        representative="Claire Martin",
    )


def collaborator() -> CollaboratorParty:
    return CollaboratorParty(
        legal_name="Studio Col-1",
        registration_id="90123456700018",
        address="3 quai des Chartrons, 33000 Bordeaux, FR",
        email="studio@example.org",
    )


def terms(assignment_id: str = "asg-1", amount: str = "450.00") -> Terms:
    return Terms(
        assignment_id=assignment_id,
        mission_id="mis-1",
        collaborator_id="col-1",
        role="Backend developer",
        rate=Rate(amount=Decimal(amount), currency="EUR", unit=RateUnit.DAY),
        start_date=date(2026, 3, 9),
        end_date=date(2026, 6, 26),
    )


def assignment_event() -> AssignmentEvent:
    return AssignmentEvent(
        event_id="9b0c6f3e-3d1e-4a51-9a57-0d3f3c6f1a01",
        event_type=EventType.ACCEPTED,
        occurred_at=datetime(2026, 3, 2, 10, 30, tzinfo=PARIS),
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        actor_id="user-17",
        org_id="org-a",
        project_id="prj-1",
        mission_id="mis-1",
        assignment_id="asg-1",
        collaborator_id="col-1",
        role="Backend developer",
        rate=Rate(amount=Decimal("450.00"), currency="EUR", unit=RateUnit.DAY),
        start_date=date(2026, 3, 9),
        end_date=date(2026, 6, 26),
        contract_template_version="freelance-fr@1",
        bundle_id="bundle-7",
        parties=Parties(organization=organization(), collaborator=collaborator()),
    )


def contract_job() -> ContractJob:
    return ContractJob(
        kind=JobKind.GENERATE,
        contract_key="ck-3f1a",
        org_id="org-a",
        project_id="prj-1",
        assignments=(
            AssignmentSnapshot(
                terms=terms("asg-1"),
                parties=Parties(organization=organization()),
                accepted_at=datetime(2026, 3, 2, 9, 30, tzinfo=PARIS),
                actor_id="user-17",
            ),
            AssignmentSnapshot(terms=terms("asg-2", "12.5"), accepted_at=ISSUED_AT),
        ),
        contract_template_version="freelance-fr@1",
        amendment_sequence=1,
        supersedes_contract_id="c-0",
        issued_at=ISSUED_AT,
        attempt=3,
        first_attempt_at=ISSUED_AT,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        cause="cmd-1",
        reason="rate renegotiated",
    )


def contract() -> Contract:
    named = NamedCollaborator(**collaborator().model_dump(), collaborator_id="col-1")
    return Contract(
        contract_id="5f0e3b9a-2c55-5d7e-9a0c-6f1f2e1d3c4b",
        contract_key="ck-3f1a",
        org_id="org-a",
        project_id="prj-1",
        assignment_ids=("asg-1", "asg-2"),
        parties=ContractParties(organization=organization(), collaborators=(named,)),
        terms=(terms("asg-1"), terms("asg-2", "0.0001")),
        contract_template_version="freelance-fr@1",
        amendment_sequence=0,
        supersedes_contract_id=None,
        document=Document(
            uri="file:///artifacts/org-a/ck-3f1a.pdf",
            sha256="ab" * 32,
            media_type="application/pdf",
            size=48213,
        ),
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        issued_at=ISSUED_AT,
        status=ContractStatus.VOID_REQUESTED,
    )


def audit_event() -> AuditEvent:
    return AuditEvent(
        audit_id="aud-1",
        type=AuditType.GENERATED,
        org_id="org-a",
        project_id="prj-1",
        mission_id="mis-1",
        assignment_id="asg-1",
        contract_id="5f0e3b9a-2c55-5d7e-9a0c-6f1f2e1d3c4b",
        attempt=2,
        outcome="issued",
        correlation_id="ck-3f1a",
        payload={"template": "freelance-fr@1", "sha256": "ab" * 32},
        occurred_at=ISSUED_AT,
    )


def notification() -> Notification:
    return Notification(
        notification_id="ntf-1",
        code=NotificationCode.EXPECTED_WARNING,
        severity=Severity.WARNING,
        org_id="org-a",
        project_id="prj-1",
        assignment_id="asg-1",
        message="asg-1 was accepted a day ago and has no contract yet",
        occurred_at=ISSUED_AT,
    )


def dead_letter() -> DeadLetter:
    return DeadLetter(
        reason_code="DECODE",
        reason="not Avro or JSON: ff fe",
        error_class="DecodeError",
        source_topic="assignments",
        partition=3,
        offset=12_345_678_901,
        key=None,
        raw=b"\xff\xfe\x00garbage",
        raw_size=10,
        raw_sha256="cd" * 32,
        attempts=1,
        occurred_at=ISSUED_AT,
    )


def organization_record() -> OrganizationRecord:
    return OrganizationRecord(**organization().model_dump(), org_id="org-a")


def collaborator_record() -> CollaboratorRecord:
    return CollaboratorRecord(**collaborator().model_dump(), collaborator_id="col-1")


def payment_block() -> PaymentBlock:
    return PaymentBlock(
        scope="org-a/prj-1/asg-1",
        org_id="org-a",
        project_id="prj-1",
        assignment_id="asg-1",
        contract_id="5f0e3b9a-2c55-5d7e-9a0c-6f1f2e1d3c4b",
        blocked=False,
        reason="assignment canceled after issuance",
        since=ISSUED_AT,
        resolved_at=ISSUED_AT + timedelta(days=2),
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    )


def preview_reply() -> PreviewReply:
    return PreviewReply(
        request_id="prev-1",
        media_type="application/pdf",
        document=b"%PDF-1.4 draft",
        terms=(terms("asg-1"),),
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        occurred_at=ISSUED_AT,
    )


def ledger_entry() -> LedgerEntry:
    return LedgerEntry(
        scope="org-a/prj-1/asg-1",
        org_id="org-a",
        project_id="prj-1",
        assignment_id="asg-1",
        mission_id="mis-1",
        state=AssignmentState.ACCEPTED,
        last_event_id="evt-1",
        last_occurred_at=ISSUED_AT,
        terms=terms("asg-1"),
        accepted_at=ISSUED_AT,
        contract_template_version="freelance-fr@1",
        contract_key="ck1-00",
        bundle_id="bundle-7",
        parties=Parties(organization=organization(), collaborator=collaborator()),
    )


def command() -> Command:
    return Command.model_validate(
        {
            "command_id": "cmd-2",
            "command_type": "RequestAmendment",
            "issued_at": ISSUED_AT,
            "org_id": "org-a",
            "project_id": "prj-1",
            "assignment_ids": ["asg-1", {"assignment_id": "asg-2", "org_id": "org-a"}],
            "contract_id": "5f0e3b9a-2c55-5d7e-9a0c-6f1f2e1d3c4b",
            "changes": {
                "asg-1": {"rate": terms("asg-1").rate, "end_date": "2026-07-31"}
            },
            "assignment": {
                **terms("asg-1").model_dump(),
                "org_id": "org-a",
                "project_id": "prj-1",
                "contract_template_version": "freelance-fr@1",
            },
            "resolution": "VOIDED",
        }
    )


def fact_event() -> FactEvent:
    return FactEvent(
        event_id="fact-1",
        event_type=FactType.INVOICE_ISSUED,
        occurred_at=ISSUED_AT,
        org_id="org-a",
        project_id="prj-1",
        mission_id="mis-1",
        assignment_id="asg-1",
        amount=Money(amount=Decimal("9000.0000"), currency="EUR"),
    )


def window_input() -> WindowInput:
    return WindowInput(
        kind=InputKind.MEMBER,
        group="org-a/prj-1/col-1/2026-03-02T09:30:00+00:00",
        window_end=ISSUED_AT,
        job=contract_job(),
    )


def bundle_link() -> BundleLink:
    return BundleLink(
        org_id="org-a",
        project_id="prj-1",
        assignment_id="asg-1",
        contract_key=contract_job().contract_key,
        occurred_at=ISSUED_AT,
        cause="cmd-1",
        trace_id="c" * 32,
        actor_id="svc-staffing",
    )


EVERY_RECORD = [
    bundle_link,
    window_input,
    preview_reply,
    ledger_entry,
    command,
    assignment_event,
    contract_job,
    contract,
    audit_event,
    notification,
    dead_letter,
    organization_record,
    collaborator_record,
    payment_block,
    fact_event,
]


class FakeRegistry:
    """A schema registry in memory, counting the registrations it is asked for."""

    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, int] = {}
        self.registrations = 0

    def register(self, subject: str, schema: str) -> int:
        self.registrations += 1
        if subject not in self.subjects:
            self.subjects[subject] = 100 + len(self.subjects)
            self.schemas[self.subjects[subject]] = schema
        return self.subjects[subject]

    def lookup(self, schema_id: int) -> str:
        if schema_id not in self.schemas:
            raise DecodeError(f"schema id {schema_id} is not registered")
        return self.schemas[schema_id]


def event_json(**changes: Any) -> bytes:
    data = json.loads(DESIGN_EXAMPLE)
    data.update(changes)
    return json.dumps(data).encode()


def test_every_record_model_has_a_schema_named_after_it() -> None:
    names = {schema.name for schema in all_schemas()}

    assert names == set(MODELS)
    assert {factory().__class__ for factory in EVERY_RECORD} == set(MODELS.values())


@pytest.mark.parametrize("schema", all_schemas(), ids=lambda schema: schema.name)
def test_every_schema_has_the_fields_of_its_model_at_every_depth(schema: Any) -> None:
    _NAMED.clear()
    _collect_named(schema.parsed)
    assert _field_mismatches(schema.parsed, schema.model) == []


@pytest.mark.parametrize("factory", EVERY_RECORD, ids=lambda f: f.__name__)
def test_every_record_survives_an_avro_round_trip(factory: Any) -> None:
    record = factory()
    codec = Codec()

    assert codec.decode(codec.encode(record), type(record)) == record


@pytest.mark.parametrize("factory", EVERY_RECORD, ids=lambda f: f.__name__)
def test_every_record_survives_a_confluent_round_trip(factory: Any) -> None:
    record = factory()
    codec = Codec(registry=FakeRegistry())

    assert codec.decode(codec.encode(record), type(record)) == record


def test_encoding_without_a_registry_writes_single_object_avro() -> None:
    encoded = Codec().encode(notification())

    assert encoded[:2] == b"\xc3\x01"
    assert encoded[2:10] == schema_for(Notification).fingerprint


def test_encoding_with_a_registry_writes_the_confluent_frame() -> None:
    registry = FakeRegistry()
    encoded = Codec(registry=registry).encode(notification())

    assert encoded[0] == 0
    assert struct.unpack(">I", encoded[1:5])[0] == 100
    assert registry.subjects == {"io.contractflow.Notification": 100}


def test_a_record_type_is_registered_once_per_codec() -> None:
    registry = FakeRegistry()
    codec = Codec(registry=registry)

    for _ in range(3):
        codec.encode(notification())

    assert registry.registrations == 1


def test_the_fingerprint_is_the_crc64_of_the_canonical_schema() -> None:
    schema = schema_for(OrganizationRecord)

    assert len(schema.fingerprint) == 8
    assert schema.fingerprint == _crc64_avro(schema.canonical.encode())


def test_amounts_come_back_at_scale_four_with_the_same_value() -> None:
    codec = Codec()
    decoded = codec.decode(codec.encode(assignment_event()), AssignmentEvent)

    assert decoded.rate is not None
    assert decoded.rate.amount == Decimal("450.00")
    assert decoded.rate.amount.as_tuple().exponent == -4


def test_instants_come_back_in_utc() -> None:
    codec = Codec()
    decoded = codec.decode(codec.encode(contract_job()), ContractJob)

    assert decoded.assignments[0].accepted_at.utcoffset() == timedelta(0)
    assert decoded.assignments[0].accepted_at == datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def test_the_design_example_json_decodes_to_an_assignment_event() -> None:
    event = Codec().decode(DESIGN_EXAMPLE.encode(), AssignmentEvent)

    assert event.event_type is EventType.ACCEPTED
    assert event.rate == Rate(
        amount=Decimal("450.00"), currency="EUR", unit=RateUnit.DAY
    )
    assert event.start_date == date(2026, 3, 9)
    assert event.parties is not None and event.parties.collaborator is not None
    assert event.parties.collaborator.email == "studio@example.org"


def test_json_with_leading_whitespace_is_still_json() -> None:
    event = Codec().decode(b"\n\t  " + event_json(), AssignmentEvent)

    assert event.assignment_id == "asg-1"


def test_money_as_a_json_number_is_refused_as_a_schema_error() -> None:
    raw = event_json(rate={"amount": 450.0, "currency": "EUR", "unit": "DAY"})

    with pytest.raises(SchemaError, match=r"rate\.amount: .*float"):
        Codec().decode(raw, AssignmentEvent)


def test_a_naive_datetime_is_refused_as_a_schema_error() -> None:
    raw = event_json(occurred_at="2026-03-02T09:30:00")

    with pytest.raises(SchemaError, match=r"occurred_at: .*timezone"):
        Codec().decode(raw, AssignmentEvent)


def test_a_schema_error_lists_every_bad_field_and_chains_pydantic() -> None:
    data = json.loads(DESIGN_EXAMPLE)
    del data["org_id"]
    data["rate"]["unit"] = "WEEK"

    with pytest.raises(SchemaError) as caught:
        Codec().decode(json.dumps(data).encode(), AssignmentEvent)

    assert "org_id: Field required" in caught.value.reason
    assert "rate.unit: " in caught.value.reason
    assert caught.value.__cause__ is not None


def test_a_json_array_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="JSON array"):
        Codec().decode(b'[{"event_id": "e"}]', AssignmentEvent)


def test_garbage_bytes_are_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="not Avro or JSON: 47 41 52"):
        Codec().decode(b"GARBAGE\x01\x02", AssignmentEvent)


def test_broken_json_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="not Avro or JSON"):
        Codec().decode(b'{"event_id": ', AssignmentEvent)


def test_json_that_is_not_utf8_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="not Avro or JSON"):
        Codec().decode(b'{"event_id": "\xff"}', AssignmentEvent)


@pytest.mark.parametrize("raw", [None, b""], ids=["none", "empty"])
def test_no_bytes_at_all_are_a_decode_error(raw: bytes | None) -> None:
    with pytest.raises(DecodeError):
        Codec().decode(raw, AssignmentEvent)


def test_avro_of_another_record_is_refused_naming_the_fingerprint() -> None:
    encoded = Codec().encode(notification())
    found = schema_for(Notification).fingerprint.hex()

    with pytest.raises(DecodeError, match=f"fingerprint {found}"):
        Codec().decode(encoded, AssignmentEvent)


def test_an_unknown_fingerprint_is_a_decode_error() -> None:
    encoded = b"\xc3\x01" + b"\x00" * 8 + b"\x02a"

    with pytest.raises(DecodeError, match="fingerprint 0000000000000000"):
        Codec().decode(encoded, AssignmentEvent)


def test_a_truncated_avro_body_is_a_decode_error() -> None:
    encoded = Codec().encode(assignment_event())

    with pytest.raises(DecodeError, match="bad Avro body"):
        Codec().decode(encoded[:-5], AssignmentEvent)


def test_bytes_after_the_avro_body_are_a_decode_error() -> None:
    encoded = Codec().encode(notification())

    with pytest.raises(DecodeError, match="left after the Avro body"):
        Codec().decode(encoded + b"\x00", Notification)


def test_the_confluent_frame_without_a_registry_is_a_decode_error() -> None:
    framed = Codec(registry=FakeRegistry()).encode(notification())

    with pytest.raises(DecodeError, match="no schema registry is configured"):
        Codec().decode(framed, Notification)


def test_a_confluent_frame_is_decoded_by_another_codec_via_the_registry() -> None:
    registry = FakeRegistry()
    framed = Codec(registry=registry).encode(audit_event())

    assert Codec(registry=registry).decode(framed, AuditEvent) == audit_event()


def test_a_confluent_frame_of_another_record_is_a_decode_error() -> None:
    registry = FakeRegistry()
    framed = Codec(registry=registry).encode(notification())

    with pytest.raises(DecodeError, match="bad Avro body"):
        Codec(registry=registry).decode(framed, AssignmentEvent)


def test_an_older_writer_schema_is_resolved_against_the_current_one() -> None:
    registry = FakeRegistry()
    older = _without_field(schema_for(Notification).source, "trace_id")
    registry.schemas[7] = older
    body = io.BytesIO()
    record = notification().model_dump(mode="python", exclude={"trace_id"})
    schemaless_writer(body, parse_schema(json.loads(older)), record)

    framed = b"\x00" + struct.pack(">I", 7) + body.getvalue()
    decoded = Codec(registry=registry).decode(framed, Notification)

    assert decoded == notification().model_copy(update={"trace_id": ""})


def test_an_unknown_schema_id_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="schema id 9"):
        Codec(registry=FakeRegistry()).decode(b"\x00\x00\x00\x00\x09\x02", Notification)


def test_an_amount_finer_than_the_schema_scale_cannot_be_encoded() -> None:
    record = contract().model_copy(update={"terms": (terms(amount="1.00001"),)})

    with pytest.raises(SchemaError, match="Contract does not fit"):
        Codec().encode(record)


@pytest.mark.parametrize("factory", EVERY_RECORD, ids=lambda f: f.__name__)
def test_decode_any_finds_the_model_by_its_fingerprint(factory: Any) -> None:
    record = factory()
    codec = Codec()

    assert codec.decode_any(codec.encode(record)) == record


def test_decode_any_finds_the_model_by_its_registry_schema() -> None:
    registry = FakeRegistry()
    framed = Codec(registry=registry).encode(contract())

    assert Codec(registry=registry).decode_any(framed) == contract()


def test_decode_any_returns_json_as_a_plain_object() -> None:
    decoded = Codec().decode_any(DESIGN_EXAMPLE.encode())

    assert decoded == json.loads(DESIGN_EXAMPLE)


def test_decode_any_refuses_an_unknown_fingerprint() -> None:
    with pytest.raises(DecodeError, match="unknown schema fingerprint"):
        Codec().decode_any(b"\xc3\x01" + b"\x11" * 8 + b"\x00")


def test_to_json_gives_exact_decimals_iso_instants_and_base64_bytes() -> None:
    job = to_json(contract_job())
    letter = to_json(dead_letter())

    assert job["assignments"][1]["terms"]["rate"]["amount"] == "12.5"
    assert job["issued_at"] == "2026-03-02T10:00:00.123456+00:00"
    assert job["assignments"][0]["terms"]["start_date"] == "2026-03-09"
    assert job["kind"] == "GENERATE"
    assert base64.b64decode(letter["raw"]) == b"\xff\xfe\x00garbage"
    assert json.loads(json.dumps(job)) == job


def test_decoded_to_json_makes_nested_records_and_tuples_plain() -> None:
    value = {"records": (organization_record(),), "amount": Decimal("1.50")}

    assert decoded_to_json(value) == {
        "records": [organization_record().model_dump(mode="json")],
        "amount": "1.50",
    }


def test_a_registry_url_without_the_registry_packages_names_what_is_missing() -> None:
    try:
        import confluent_kafka.schema_registry  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the schema registry client is installed")

    with pytest.raises(ImportError, match="confluent-kafka\\[schemaregistry\\]"):
        Codec("http://registry.invalid:8081").encode(notification())


@given(st.binary(max_size=512))
def test_arbitrary_bytes_raise_nothing_but_permanent_errors(raw: bytes) -> None:
    _decodes_or_fails_permanently(Codec(), raw)


@given(st.binary(max_size=512), st.sampled_from(EVERY_RECORD))
def test_arbitrary_avro_bodies_raise_nothing_but_permanent_errors(
    body: bytes, factory: Any
) -> None:
    model = type(factory())
    raw = b"\xc3\x01" + schema_for(model).fingerprint + body

    _decodes_or_fails_permanently(Codec(), raw, model)


@given(st.binary(max_size=512))
def test_arbitrary_confluent_bodies_raise_nothing_but_permanent_errors(
    body: bytes,
) -> None:
    registry = FakeRegistry()
    codec = Codec(registry=registry)
    framed = codec.encode(assignment_event())

    _decodes_or_fails_permanently(codec, framed[:5] + body)


def _json_tree(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children) | st.dictionaries(st.text(), children)


@given(st.recursive(st.none() | st.booleans() | st.text() | st.floats(), _json_tree))
def test_arbitrary_json_raises_nothing_but_permanent_errors(value: Any) -> None:
    _decodes_or_fails_permanently(Codec(), json.dumps(value).encode())


def _decodes_or_fails_permanently(
    codec: Codec, raw: bytes, model: type[Record] = AssignmentEvent
) -> None:
    try:
        codec.decode(raw, model)
        codec.decode_any(raw)
    except PermanentError:
        pass


def _field_mismatches(avro: dict[str, Any], model: type[Record]) -> list[str]:
    fields = {field["name"]: field["type"] for field in avro["fields"]}
    if set(fields) != set(model.model_fields):
        return [f"{avro['name']}: {sorted(fields)} != {sorted(model.model_fields)}"]
    mismatches = []
    for name, info in model.model_fields.items():
        nested = _nested_record(fields[name])
        inner = _nested_model(info.annotation)
        if (nested is None) != (inner is None):
            mismatches.append(f"{avro['name']}.{name}: record on one side only")
        elif nested is not None and inner is not None:
            mismatches.extend(_field_mismatches(nested, inner))
    return mismatches


_NAMED: dict[str, dict[str, Any]] = {}


def _collect_named(avro: Any) -> None:
    # A named type is defined once and referenced by name afterwards.
    if isinstance(avro, list):
        for branch in avro:
            _collect_named(branch)
    elif isinstance(avro, dict):
        if avro.get("type") == "record":
            _NAMED[avro["name"]] = avro
            _NAMED[avro["name"].rsplit(".", 1)[-1]] = avro
            for field in avro["fields"]:
                _collect_named(field["type"])
        for inner in ("items", "values"):
            if inner in avro:
                _collect_named(avro[inner])


def _nested_record(avro: Any) -> dict[str, Any] | None:
    if isinstance(avro, str):
        return _NAMED.get(avro)
    if isinstance(avro, list):
        return next(filter(None, map(_nested_record, avro)), None)
    if isinstance(avro, dict) and avro["type"] == "array":
        return _nested_record(avro["items"])
    if isinstance(avro, dict) and avro["type"] == "map":
        return _nested_record(avro["values"])
    if isinstance(avro, dict) and avro["type"] == "record":
        return avro
    return None


def _nested_model(annotation: Any) -> type[Record] | None:
    if isinstance(annotation, type) and issubclass(annotation, Record):
        return annotation
    return next(filter(None, map(_nested_model, get_args(annotation))), None)


def _without_field(source: str, name: str) -> str:
    schema = json.loads(source)
    schema["fields"] = [f for f in schema["fields"] if f["name"] != name]
    return json.dumps(schema)


def _crc64_avro(data: bytes) -> bytes:
    # The Avro specification's Rabin fingerprint, bit by bit, as a second opinion.
    empty = 0xC15D213AA4D7A795
    fp = empty
    for byte in data:
        fp ^= byte
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
    return fp.to_bytes(8, "little")
