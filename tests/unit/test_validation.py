"""Validation of assignment events: tables of bad input and their reason codes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pydantic
import pytest

from contracts.errors import (
    PermanentError,
    ReasonCode,
    SchemaError,
    ValidationError,
)
from contracts.models import AssignmentEvent, Rate, RateUnit, Terms
from contracts.validation import (
    KNOWN_CURRENCIES,
    check_same_tenant,
    terms_from_event,
    validate_rate,
)

TEMPLATES = frozenset({"freelance-fr@1", "employment-fr@2"})
A_UUID = "9B0C6F3E-3D1E-4A51-9A57-0D3F3C6F1A01"


def _record(**changes: Any) -> dict[str, Any]:
    """Return the example acceptance of DESIGN.md §4, with some fields changed."""
    record: dict[str, Any] = {
        "event_id": "9b0c6f3e-3d1e-4a51-9a57-0d3f3c6f1a01",
        "event_type": "AssignmentAccepted",
        "occurred_at": "2026-03-02T09:30:00+00:00",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "actor_id": "user-17",
        "source": "backend",
        "org_id": "org-a",
        "project_id": "prj-1",
        "mission_id": "mis-1",
        "assignment_id": "asg-1",
        "collaborator_id": "col-1",
        "role": "Backend developer",
        "rate": {"amount": "450.00", "currency": "EUR", "unit": "DAY"},
        "start_date": "2026-03-09",
        "end_date": "2026-06-26",
        "contract_template_version": "freelance-fr@1",
    }
    return record | changes


def _event(**changes: Any) -> AssignmentEvent:
    return AssignmentEvent.model_validate(_record(**changes))


def _rate(amount: str, currency: str = "EUR") -> dict[str, str]:
    return {"amount": amount, "currency": currency, "unit": "DAY"}


# What the records themselves refuse, before any rule of this module runs.


@pytest.mark.parametrize(
    "changes",
    [
        {"rate": {"amount": 450.0, "currency": "EUR", "unit": "DAY"}},
        {"rate": {"amount": True, "currency": "EUR", "unit": "DAY"}},
        {"rate": _rate("NaN")},
        {"rate": {"amount": "450.00", "currency": "EUR", "unit": "WEEK"}},
        {"occurred_at": "2026-03-02T09:30:00"},
        {"event_type": "AssignmentSigned"},
        {"start_date": "09/03/2026"},
    ],
)
def test_the_event_record_refuses_floats_naive_times_and_unknown_values(
    changes: dict[str, Any],
) -> None:
    with pytest.raises(pydantic.ValidationError):
        _event(**changes)


def test_a_good_record_parses_with_its_instant_in_utc() -> None:
    event = _event(occurred_at="2026-03-02T11:30:00+02:00")

    assert event.occurred_at == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert event.occurred_at.tzinfo == UTC
    assert event.rate == Rate(
        amount=Decimal("450.00"), currency="EUR", unit=RateUnit.DAY
    )


# terms_from_event


def test_the_terms_of_a_good_acceptance_are_returned() -> None:
    terms = terms_from_event(_event(), TEMPLATES)

    assert terms == Terms(
        assignment_id="asg-1",
        mission_id="mis-1",
        collaborator_id="col-1",
        role="Backend developer",
        rate=Rate(amount=Decimal("450.00"), currency="EUR", unit=RateUnit.DAY),
        start_date=date(2026, 3, 9),
        end_date=date(2026, 6, 26),
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"event_type": "AssignmentProposed"},
        {"event_type": "AssignmentChanged"},
        {"end_date": "2026-03-09"},
        {"rate": _rate("450.00000")},
        {"rate": _rate("0.0001", "JPY")},
        {"rate": _rate("99999999999999.9999", "USD")},
        {"rate": _rate("1E+3", "CHF")},
        {"contract_template_version": "employment-fr@2"},
        {"assignment_id": A_UUID},
    ],
)
def test_events_that_keep_every_rule_give_their_terms(
    changes: dict[str, Any],
) -> None:
    event = _event(**changes)

    terms = terms_from_event(event, TEMPLATES)

    assert (terms.assignment_id, terms.rate) == (event.assignment_id, event.rate)
    assert (terms.start_date, terms.end_date) == (event.start_date, event.end_date)


BAD_EVENTS = [
    # (changes, error class, reason code, words the reason must contain)
    ({"collaborator_id": None}, SchemaError, ReasonCode.SCHEMA, ["collaborator_id"]),
    ({"role": None}, SchemaError, ReasonCode.SCHEMA, ["role"]),
    ({"rate": None}, SchemaError, ReasonCode.SCHEMA, ["rate"]),
    ({"start_date": None}, SchemaError, ReasonCode.SCHEMA, ["start_date"]),
    ({"end_date": None}, SchemaError, ReasonCode.SCHEMA, ["end_date"]),
    (
        {"contract_template_version": None},
        SchemaError,
        ReasonCode.SCHEMA,
        ["contract_template_version"],
    ),
    (
        {"rate": None, "end_date": None},
        SchemaError,
        ReasonCode.SCHEMA,
        ["rate", "end_date"],
    ),
    (
        {"start_date": "2026-02-01", "end_date": "2026-01-01"},
        ValidationError,
        ReasonCode.VALIDATION,
        ["end_date 2026-01-01 is before start_date 2026-02-01"],
    ),
    ({"rate": _rate("450", "XYZ")}, ValidationError, ReasonCode.VALIDATION, ["XYZ"]),
    ({"rate": _rate("450", "eur")}, ValidationError, ReasonCode.VALIDATION, ["eur"]),
    ({"rate": _rate("0")}, ValidationError, ReasonCode.VALIDATION, ["greater"]),
    ({"rate": _rate("-450")}, ValidationError, ReasonCode.VALIDATION, ["-450"]),
    ({"rate": _rate("450.00001")}, ValidationError, ReasonCode.VALIDATION, ["4"]),
    (
        {"rate": _rate("100000000000000")},
        ValidationError,
        ReasonCode.VALIDATION,
        ["14 digits"],
    ),
    (
        {"contract_template_version": "freelance-fr@9"},
        ValidationError,
        ReasonCode.UNKNOWN_TEMPLATE,
        ["freelance-fr@9"],
    ),
    ({"org_id": ""}, ValidationError, ReasonCode.VALIDATION, ["org_id"]),
    ({"project_id": " "}, ValidationError, ReasonCode.VALIDATION, ["project_id"]),
    ({"mission_id": ""}, ValidationError, ReasonCode.VALIDATION, ["mission_id"]),
    ({"assignment_id": ""}, ValidationError, ReasonCode.VALIDATION, ["assignment_id"]),
    (
        {"collaborator_id": "\t"},
        ValidationError,
        ReasonCode.VALIDATION,
        ["collaborator_id"],
    ),
    ({"role": ""}, ValidationError, ReasonCode.VALIDATION, ["role"]),
    (
        {"contract_template_version": ""},
        ValidationError,
        ReasonCode.VALIDATION,
        ["contract_template_version"],
    ),
]


@pytest.mark.parametrize(("changes", "error", "code", "words"), BAD_EVENTS)
def test_an_event_that_breaks_a_rule_is_refused_with_its_reason_code(
    changes: dict[str, Any],
    error: type[PermanentError],
    code: ReasonCode,
    words: list[str],
) -> None:
    with pytest.raises(error) as caught:
        terms_from_event(_event(**changes), TEMPLATES)

    assert caught.value.reason_code == code
    assert all(word in caught.value.reason for word in words), caught.value.reason


def test_an_unknown_template_is_a_permanent_error() -> None:
    event = _event(contract_template_version="freelance-fr@9")

    with pytest.raises(PermanentError) as caught:
        terms_from_event(event, TEMPLATES)

    assert caught.value.reason_code == ReasonCode.UNKNOWN_TEMPLATE


# validate_rate


@pytest.mark.parametrize(
    "rate",
    [
        Rate.model_construct(amount=Decimal("NaN"), currency="EUR", unit=RateUnit.DAY),
        Rate.model_construct(
            amount=Decimal("Infinity"), currency="EUR", unit=RateUnit.DAY
        ),
        Rate.model_construct(amount=Decimal("-0"), currency="EUR", unit=RateUnit.DAY),
        Rate.model_construct(amount=Decimal("450"), currency="EUR", unit="DAY"),
        Rate.model_construct(amount=Decimal("450"), currency="XTS", unit=RateUnit.DAY),
        Rate.model_construct(
            amount=Decimal("1.00000000000000000000000000001"),
            currency="EUR",
            unit=RateUnit.DAY,
        ),
    ],
)
def test_a_rate_that_cannot_be_paid_or_sent_is_refused(rate: Rate) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_rate(rate)

    assert caught.value.reason_code == ReasonCode.VALIDATION


@pytest.mark.parametrize("unit", list(RateUnit))
def test_a_rate_in_any_unit_is_accepted(unit: RateUnit) -> None:
    validate_rate(Rate(amount=Decimal("12.5"), currency="GBP", unit=unit))


def test_the_currency_list_holds_the_major_codes_and_no_placeholders() -> None:
    majors = {"EUR", "USD", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "INR", "BRL"}

    assert majors <= KNOWN_CURRENCIES
    assert not {"XTS", "XXX", "HRK", "FRF"} & KNOWN_CURRENCIES
    assert all(len(c) == 3 and c.isascii() and c.isupper() for c in KNOWN_CURRENCIES)
    assert len(KNOWN_CURRENCIES) > 150


# check_same_tenant


def test_pairs_of_one_tenant_give_that_tenant() -> None:
    pairs = [("org-a", "prj-1"), ("org-a", "prj-1")]

    assert check_same_tenant(pairs) == ("org-a", "prj-1")


def test_tenants_are_compared_on_their_canonical_ids() -> None:
    pairs = [(A_UUID, "caf\u00e9"), (A_UUID.lower(), "cafe\u0301")]

    assert check_same_tenant(iter(pairs)) == (A_UUID.lower(), "caf\u00e9")


@pytest.mark.parametrize(
    "pairs",
    [
        [("org-a", "prj-1"), ("org-b", "prj-1")],
        [("org-a", "prj-1"), ("org-a", "prj-2")],
        [("org-a", "prj-1"), ("ORG-A", "prj-1")],
        [("org-a", "prj-1"), ("org-a", "prj-1"), ("org-b", "prj-2")],
    ],
)
def test_pairs_of_two_tenants_are_a_tenant_mismatch(
    pairs: list[tuple[str, str]],
) -> None:
    with pytest.raises(PermanentError) as caught:
        check_same_tenant(pairs)

    assert caught.value.reason_code == ReasonCode.TENANT_MISMATCH
    assert all(f"{org}/{prj}" in caught.value.reason for org, prj in pairs)


def test_no_pairs_at_all_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        check_same_tenant([])

    assert caught.value.reason_code == ReasonCode.VALIDATION
