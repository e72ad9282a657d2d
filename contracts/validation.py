"""Business rules that a record must keep before a job can be made from it.

Each check raises an error of :mod:`contracts.errors` whose reason reads on
its own in a dead letter, and whose reason code says which rule broke.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from decimal import Decimal

from contracts.currencies import KNOWN_CURRENCIES
from contracts.errors import ReasonCode, SchemaError, ValidationError
from contracts.keys import canonical_id
from contracts.models import AssignmentEvent, Rate, RateUnit, Terms

__all__ = [
    "KNOWN_CURRENCIES",
    "check_same_tenant",
    "terms_from_event",
    "validate_rate",
]

# Amounts travel as an Avro decimal of precision 18 and scale 4, which leaves
# 14 digits before the point.
AMOUNT_SCALE = 4
AMOUNT_INTEGER_DIGITS = 18 - AMOUNT_SCALE

_TERMS_FIELDS = (
    "collaborator_id",
    "role",
    "rate",
    "start_date",
    "end_date",
    "contract_template_version",
)
_TERM_KEYS = tuple(Terms.model_fields)
_TEXT_FIELDS = (
    "org_id",
    "project_id",
    "mission_id",
    "assignment_id",
    "collaborator_id",
    "role",
    "contract_template_version",
)


def validate_rate(rate: Rate) -> None:
    """Check that a rate names a known currency and fits the wire decimal."""
    if rate.currency not in KNOWN_CURRENCIES:
        raise ValidationError(f"currency {rate.currency!r} is not an ISO 4217 code")
    if not isinstance(rate.unit, RateUnit):
        units = ", ".join(RateUnit)
        raise ValidationError(f"rate unit {rate.unit!r} is not one of {units}")
    _check_amount(rate.amount)


def terms_from_event(event: AssignmentEvent, known_templates: Collection[str]) -> Terms:
    """Return the terms an event offers, or raise why they cannot be accepted.

    For the event types that carry terms: proposed, accepted and changed.
    The values are kept as the producer sent them; keys canonicalize ids.
    """
    missing = [name for name in _TERMS_FIELDS if getattr(event, name) is None]
    if missing:
        raise SchemaError(f"{event.event_type} lacks {', '.join(missing)}")
    _check_not_blank(event)

    terms = Terms.model_validate({name: getattr(event, name) for name in _TERM_KEYS})
    if terms.end_date < terms.start_date:
        raise ValidationError(
            f"end_date {terms.end_date} is before start_date {terms.start_date}"
        )
    validate_rate(terms.rate)
    _check_template(event.contract_template_version, known_templates)
    return terms


def check_same_tenant(org_project_pairs: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """Return the one canonical (org_id, project_id) that all pairs share."""
    tenants = {(canonical_id(org), canonical_id(prj)) for org, prj in org_project_pairs}
    if not tenants:
        raise ValidationError("no assignment to take the tenant from")
    if len(tenants) > 1:
        names = ", ".join(f"{org}/{prj}" for org, prj in sorted(tenants))
        raise ValidationError(
            f"assignments of one contract span several tenants: {names}",
            reason_code=ReasonCode.TENANT_MISMATCH,
        )
    return tenants.pop()


def _check_amount(amount: Decimal) -> None:
    if not amount.is_finite():
        raise ValidationError(f"rate amount {amount} is not a finite number")
    if amount <= 0:
        raise ValidationError(f"rate amount {amount} is not greater than zero")

    places, integer_digits = _decimal_shape(amount)
    if places > AMOUNT_SCALE:
        raise ValidationError(
            f"rate amount {amount} has more than {AMOUNT_SCALE} decimal places"
        )
    if integer_digits > AMOUNT_INTEGER_DIGITS:
        raise ValidationError(
            f"rate amount {amount} has more than {AMOUNT_INTEGER_DIGITS} digits "
            "before the decimal point"
        )


def _decimal_shape(amount: Decimal) -> tuple[int, int]:
    # Counted on the digits themselves rather than with normalize(), which
    # rounds to the context precision and could hide a 29th decimal place.
    # Trailing zeros do not count: 450.00000 is exactly 450 at scale 4.
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # the amount is finite
    significant = "".join(map(str, digits)).rstrip("0")
    exponent += len(digits) - len(significant)
    return max(0, -exponent), max(0, len(significant) + exponent)


def _check_not_blank(event: AssignmentEvent) -> None:
    blank = [name for name in _TEXT_FIELDS if not str(getattr(event, name)).strip()]
    if blank:
        raise ValidationError(f"{event.event_type} has blank {', '.join(blank)}")


def _check_template(version: str | None, known_templates: Collection[str]) -> None:
    if version not in known_templates:
        raise ValidationError(
            f"contract_template_version {version!r} is not a known template",
            reason_code=ReasonCode.UNKNOWN_TEMPLATE,
        )
