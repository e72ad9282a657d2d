"""A seeded, realistic workload for the demo: parties, projects and assignments.

`generate` is pure: everything it draws comes from one `random.Random(seed)`,
so a seed names a scenario, and a test can rebuild the demo's expectations.
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any

TEMPLATE = "freelance-fr@1"
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

Triple = tuple[str, str, str]

FIRST_NAMES = (
    "Camille", "Claire", "Léa", "Manon", "Inès", "Chloé", "Sarah", "Julie",
    "Louis", "Hugo", "Thomas", "Nicolas", "Julien", "Antoine", "Mathieu",
    "Étienne", "Émilie", "Aurélien", "Hélène", "François", "Agnès", "Rémi",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit",
    "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel",
    "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel",
    "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet", "François",
)  # fmt: skip
ORG_PATTERNS = (
    "{name} Conseil SAS", "Groupe {name} SA", "{name} & Associés SARL",
    "Ateliers {name} SAS", "{name} Ingénierie SAS", "Éditions {name} SA",
)  # fmt: skip
FREELANCE_PATTERNS = (
    "{first} {last} EI", "Studio {last}", "{last} Conseil EURL",
    "{first} {last} EIRL", "{last} Digital SASU",
)  # fmt: skip
STREETS = (
    "rue de la République", "avenue Jean Jaurès", "boulevard Voltaire",
    "rue Victor Hugo", "quai des Chartrons", "place Bellecour",
    "rue du Faubourg Saint-Antoine", "cours Mirabeau", "allée des Tilleuls",
)  # fmt: skip
CITIES = (
    ("75011", "Paris"), ("69002", "Lyon"), ("33000", "Bordeaux"),
    ("13001", "Marseille"), ("31000", "Toulouse"), ("44000", "Nantes"),
    ("59000", "Lille"), ("67000", "Strasbourg"), ("35000", "Rennes"),
    ("06000", "Nice"), ("34000", "Montpellier"),
)  # fmt: skip
ROLES = (
    "Backend developer", "Frontend developer", "Data engineer",
    "Product designer", "Scrum master", "DevOps engineer", "QA engineer",
    "Technical writer", "Data analyst", "Security consultant",
    "Mobile developer", "Solution architect", "Product owner",
)  # fmt: skip
EMAIL_DOMAINS = ("example.org", "example.com", "example.net")
# Weighted draws: most contracts are French day rates in euros.
CURRENCIES = (("EUR", 85), ("GBP", 10), ("CHF", 5))
UNITS = (("DAY", 60), ("HOUR", 15), ("MONTH", 15), ("FIXED", 10))
# Plausible amount ranges per unit, in whole currency units, and their step.
AMOUNTS = {
    "DAY": (350, 950, 5),
    "HOUR": (45, 140, 1),
    "MONTH": (4500, 12000, 50),
    "FIXED": (2000, 40000, 250),
}


@dataclass
class Scenario:
    """Reference records, events in delivery order, and what must come out."""

    seed: int
    organizations: list[dict[str, Any]] = field(default_factory=list)
    collaborators: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    expected_contracts: set[Triple] = field(default_factory=set)
    never_contract: set[Triple] = field(default_factory=set)
    frontend: set[Triple] = field(default_factory=set)
    duplicates: int = 0

    @property
    def event_count(self) -> int:
        """Return how many records the scenario delivers, duplicates included."""
        return len(self.events)

    @property
    def first_deliveries(self) -> int:
        """Return how many distinct events the scenario delivers."""
        return len(self.events) - self.duplicates

    @property
    def assignments(self) -> set[Triple]:
        """Return every assignment of the scenario."""
        return self.expected_contracts | self.never_contract


@dataclass(frozen=True)
class Mix:
    """The shares that shape a scenario's lifecycle and its deliveries."""

    accepted: float = 0.80
    declined: float = 0.10
    frontend: float = 0.02
    twice: float = 0.10
    thrice: float = 0.03
    snapshot: float = 0.50


@dataclass(frozen=True)
class _Assignment:
    triple: Triple
    mission_id: str
    collaborator: dict[str, Any]
    terms: dict[str, Any]


def generate(
    seed: int = 7,
    organizations: int = 3,
    projects: int = 20,
    assignments: int = 1000,
    collaborators: int | None = None,
    mix: Mix | None = None,
) -> Scenario:
    """Return the scenario that `seed` names, at the sizes asked."""
    mix = mix or Mix()
    rng = Random(seed)
    scenario = Scenario(seed)
    scenario.organizations = [_organization(rng) for _ in range(organizations)]
    count = collaborators or max(1, assignments // 4)
    scenario.collaborators = [_collaborator(rng, n + 1) for n in range(count)]
    missions = _missions(rng, scenario.organizations, projects)
    drafted = _assignments(rng, missions, scenario.collaborators, assignments)

    timeline = [e for a in drafted for e in _lifecycle(rng, scenario, a, mix)]
    timeline.sort(key=lambda pair: pair[0])
    firsts = _stamp(rng, [event for _, event in timeline])
    scenario.events, scenario.duplicates = _deliveries(rng, firsts, mix)
    return scenario


def _organization(rng: Random) -> dict[str, Any]:
    last = rng.choice(LAST_NAMES)
    return {
        "org_id": f"org-{_uuid(rng)}",
        "legal_name": rng.choice(ORG_PATTERNS).format(name=last),
        "registration_id": _luhn_complete(_digits(rng, 8)),
        "address": _address(rng),
        "representative": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
    }


def _collaborator(rng: Random, number: int) -> dict[str, Any]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    siren = _luhn_complete(_digits(rng, 8))
    local = _ascii(f"{first}.{last}").lower().replace(" ", "-")
    return {
        "collaborator_id": f"col-{number:05d}",
        "legal_name": rng.choice(FREELANCE_PATTERNS).format(first=first, last=last),
        "registration_id": _luhn_complete(siren + _digits(rng, 4)),
        "address": _address(rng),
        "email": f"{local}@{rng.choice(EMAIL_DOMAINS)}",
    }


def _missions(
    rng: Random, organizations: list[dict[str, Any]], projects: int
) -> list[tuple[str, str, str]]:
    # Every organization gets at least one project while there are enough.
    missions = []
    number = 0
    for n in range(projects):
        owner = organizations[n] if n < len(organizations) else None
        org = owner or rng.choice(organizations)
        project_id = f"prj-{n + 1:04d}"
        for _ in range(rng.randint(1, 4)):
            number += 1
            missions.append((org["org_id"], project_id, f"mis-{number:05d}"))
    return missions


def _assignments(
    rng: Random,
    missions: list[tuple[str, str, str]],
    collaborators: list[dict[str, Any]],
    count: int,
) -> list[_Assignment]:
    # Each organization numbers its own assignments, so tenants reuse ids.
    numbers: dict[str, int] = {}
    drafted = []
    for _ in range(count):
        org_id, project_id, mission_id = rng.choice(missions)
        numbers[org_id] = numbers.get(org_id, 0) + 1
        triple = (org_id, project_id, f"asg-{numbers[org_id]:06d}")
        collaborator = rng.choice(collaborators)
        drafted.append(_Assignment(triple, mission_id, collaborator, _terms(rng)))
    return drafted


def _terms(rng: Random) -> dict[str, Any]:
    unit = _weighted(rng, UNITS)
    low, high, step = AMOUNTS[unit]
    amount = Decimal(rng.randrange(low, high + 1, step))
    start = START.date() + timedelta(days=rng.randint(7, 120))
    end = start + timedelta(days=rng.randint(0, 270))
    return {
        "role": rng.choice(ROLES),
        "rate": {
            "amount": f"{amount:.2f}",
            "currency": _weighted(rng, CURRENCIES),
            "unit": unit,
        },
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
    }


def _lifecycle(
    rng: Random, scenario: Scenario, assignment: _Assignment, mix: Mix
) -> list[tuple[float, dict[str, Any]]]:
    # Times here only order the events; `_stamp` turns the order into instants.
    proposed_at = rng.uniform(0, 1000)
    events = [(proposed_at, _event(rng, assignment, "AssignmentProposed"))]
    draw = rng.random()
    decided_at = proposed_at + rng.uniform(1, 100)
    if draw < mix.accepted:
        events.append((decided_at, _acceptance(rng, scenario, assignment, mix)))
    else:
        scenario.never_contract.add(assignment.triple)
        if draw < mix.accepted + mix.declined:
            events.append((decided_at, _event(rng, assignment, "AssignmentDeclined")))
    return events


def _acceptance(
    rng: Random, scenario: Scenario, assignment: _Assignment, mix: Mix
) -> dict[str, Any]:
    event = _event(rng, assignment, "AssignmentAccepted")
    if rng.random() < mix.frontend:
        event["source"] = "frontend"
        scenario.never_contract.add(assignment.triple)
        scenario.frontend.add(assignment.triple)
    else:
        scenario.expected_contracts.add(assignment.triple)
    if rng.random() < mix.snapshot:
        event["parties"] = _parties(scenario, assignment)
    return event


def _parties(scenario: Scenario, assignment: _Assignment) -> dict[str, Any]:
    org_id = assignment.triple[0]
    org = next(o for o in scenario.organizations if o["org_id"] == org_id)
    return {
        "organization": {k: v for k, v in org.items() if k != "org_id"},
        "collaborator": {
            k: v for k, v in assignment.collaborator.items() if k != "collaborator_id"
        },
    }


def _event(rng: Random, assignment: _Assignment, event_type: str) -> dict[str, Any]:
    org_id, project_id, assignment_id = assignment.triple
    return {
        "event_id": _uuid(rng),
        "event_type": event_type,
        "occurred_at": "",  # stamped once every event is in order
        "trace_id": f"{rng.getrandbits(128):032x}",
        "actor_id": f"user-{rng.randint(1, 60)}",
        "source": "backend",
        "org_id": org_id,
        "project_id": project_id,
        "mission_id": assignment.mission_id,
        "assignment_id": assignment_id,
        "collaborator_id": assignment.collaborator["collaborator_id"],
        **assignment.terms,
        "contract_template_version": TEMPLATE,
    }


def _stamp(rng: Random, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Strictly increasing instants, a few seconds to a couple of minutes apart.
    at = START
    for event in events:
        at += timedelta(seconds=rng.randint(1, 120))
        event["occurred_at"] = at.isoformat()
    return events


def _deliveries(
    rng: Random, firsts: list[dict[str, Any]], mix: Mix
) -> tuple[list[dict[str, Any]], int]:
    # A repeat is delivered a little after its first copy, never before it.
    slots: list[tuple[float, int, dict[str, Any]]] = []
    for index, event in enumerate(firsts):
        slots.append((float(index), len(slots), event))
        draw = rng.random()
        repeats = 2 if draw < mix.thrice else 1 if draw < mix.thrice + mix.twice else 0
        for _ in range(repeats):
            later = index + rng.uniform(0.5, 20)
            slots.append((later, len(slots), dict(event)))
    slots.sort(key=lambda slot: (slot[0], slot[1]))
    return [event for _, _, event in slots], len(slots) - len(firsts)


def _weighted(rng: Random, choices: tuple[tuple[str, int], ...]) -> str:
    values, weights = zip(*choices, strict=True)
    return rng.choices(values, weights=weights)[0]


def _uuid(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _digits(rng: Random, count: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(count))


def _luhn_complete(digits: str) -> str:
    """Append the check digit that makes `digits` pass the Luhn test (SIREN, SIRET)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return digits + str((10 - total % 10) % 10)


def _address(rng: Random) -> str:
    postcode, city = rng.choice(CITIES)
    return f"{rng.randint(1, 180)} {rng.choice(STREETS)}, {postcode} {city}, FR"


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode("ascii")


def luhn_valid(digits: str) -> bool:
    """Tell whether a SIREN or SIRET passes the Luhn test."""
    return digits.isdigit() and _luhn_complete(digits[:-1]) == digits
