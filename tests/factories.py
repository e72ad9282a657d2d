"""Builders of realistic domain records for tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from contracts.models import (
    AssignmentEvent,
    CollaboratorParty,
    OrganizationParty,
    Parties,
)

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
TEMPLATE = "freelance-fr@1"
TEMPLATES = frozenset({TEMPLATE})

ORGANIZATION = OrganizationParty(
    legal_name="Org A SAS",
    registration_id="552100554",
    address="12 rue de la Paix, 75002 Paris, FR",
    representative="Claire Martin",
)
COLLABORATOR = CollaboratorParty(
    legal_name="Studio Col-1",
    registration_id="90123456700018",
    address="3 quai des Chartrons, 33000 Bordeaux, FR",
    email="studio@example.org",
)


def event(
    event_type: str = "AssignmentAccepted",
    *,
    event_id: str | None = None,
    at: int = 0,
    **overrides: Any,
) -> AssignmentEvent:
    """An assignment event `at` minutes after T0, with the DESIGN example's terms."""
    fields: dict[str, Any] = {
        "event_id": event_id or f"evt-{event_type}-{at}",
        "event_type": event_type,
        "occurred_at": T0 + timedelta(minutes=at),
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "actor_id": "user-17",
        "source": "backend",
        "org_id": "org-a",
        "project_id": "prj-1",
        "mission_id": "mis-1",
        "assignment_id": "asg-1",
        "collaborator_id": "col-1",
        "role": "Backend developer",
        "rate": {"amount": Decimal("450.00"), "currency": "EUR", "unit": "DAY"},
        "start_date": date(2026, 3, 9),
        "end_date": date(2026, 6, 26),
        "contract_template_version": TEMPLATE,
        "parties": Parties(organization=ORGANIZATION, collaborator=COLLABORATOR),
    }
    fields.update(overrides)
    return AssignmentEvent.model_validate(fields)
