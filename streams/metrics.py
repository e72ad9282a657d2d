"""Every metric of contractflow, declared once against a registry passed in.

Label values come from closed sets (event types, stages, outcomes, reason and
notification codes); anything else is counted as "other", so no id, tenant or
free text ever becomes a time series.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram

from contracts.errors import ReasonCode
from contracts.models import AuditType, EventType, NotificationCode
from contracts.outcome import Outcome
from contracts.timeline import FactType

OTHER = "other"
EVENT_TYPES = frozenset([*EventType, *FactType])
STAGES = frozenset({"intake", "generate"})
OUTCOMES = frozenset({"success", "duplicate", "failed", "skipped"})
REASONS = frozenset(ReasonCode)
WARNING_CODES = frozenset(NotificationCode)

# From a healthy issuance (a render and a store, about a second) through
# retries (backoff capped at 5 minutes, 8 attempts: up to about half an hour)
# to bundles waiting for their GenerateContract or window, and the detector's
# default grace of a day: seconds to a day, roughly tripling per bucket.
ISSUANCE_BUCKETS = (
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    24 * 3600.0,
)


class Metrics:
    """The product's counters and histogram, and bounded ways to move them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events_in = Counter(
            "contractflow_events_in",
            "Input events decoded, by event type.",
            ["event_type"],
            registry=registry,
        )
        self.contracts_issued = Counter(
            "contractflow_contracts_issued",
            "Contracts and amendments issued for the first time.",
            registry=registry,
        )
        self.duplicates_suppressed = Counter(
            "contractflow_duplicates_suppressed",
            "Repeated inputs that changed nothing, by stage.",
            ["stage"],
            registry=registry,
        )
        self.attempts = Counter(
            "contractflow_generation_attempts",
            "Generation attempts, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.retries_parked = Counter(
            "contractflow_retries_parked",
            "Jobs parked for a later attempt after a transient failure.",
            registry=registry,
        )
        self.dead_letters = Counter(
            "contractflow_dead_letters",
            "Records sent to the dead letter topic, by reason code.",
            ["reason"],
            registry=registry,
        )
        self.warnings = Counter(
            "contractflow_warnings_emitted",
            "Notifications emitted, by code.",
            ["code"],
            registry=registry,
        )
        self.voids = Counter(
            "contractflow_voids_requested",
            "Contracts whose void was requested by a cancel after issuance.",
            registry=registry,
        )
        self.previews = Counter(
            "contractflow_previews",
            "Draft previews rendered.",
            registry=registry,
        )
        self.acceptance_to_issuance = Histogram(
            "contractflow_acceptance_to_issuance_seconds",
            "Seconds from an assignment's acceptance to its contract's issuance.",
            buckets=ISSUANCE_BUCKETS,
            registry=registry,
        )
        self._zero_labels()

    def event_in(self, event_type: str) -> None:
        """Count one decoded input event."""
        self.events_in.labels(_bounded(event_type, EVENT_TYPES)).inc()

    def duplicate(self, stage: str) -> None:
        """Count one repeated input that a stage suppressed."""
        self.duplicates_suppressed.labels(_bounded(stage, STAGES)).inc()

    def attempt(self, outcome: str) -> None:
        """Count one generation attempt and its outcome."""
        self.attempts.labels(_bounded(outcome, OUTCOMES)).inc()

    def dead_letter(self, reason_code: str) -> None:
        """Count one dead letter."""
        self.dead_letters.labels(_bounded(reason_code, REASONS)).inc()

    def warning(self, code: str) -> None:
        """Count one notification."""
        self.warnings.labels(_bounded(code, WARNING_CODES)).inc()

    def issued(self, accepted_at: datetime, issued_at: datetime) -> None:
        """Count one issued contract and observe how long it took."""
        self.contracts_issued.inc()
        seconds = (issued_at - accepted_at).total_seconds()
        # A late acceptance replayed after issuance would give a negative wait.
        self.acceptance_to_issuance.observe(max(seconds, 0.0))

    def sent(self, outcome: Outcome, now: datetime) -> None:
        """Count what an acknowledged outcome did, from its audit records.

        Counting the records that reached the broker, rather than what a stage
        meant to do, keeps the counters equal to what the topics hold.
        """
        voided: set[str] = set()
        for audit in outcome.audits:
            if audit.type is AuditType.GENERATION_ATTEMPT:
                self.attempt(audit.outcome)
                if audit.outcome == "duplicate":
                    self.duplicate("generate")
            elif audit.type is AuditType.VOID_REQUESTED and audit.contract_id:
                voided.add(audit.contract_id)
        self.voids.inc(len(voided))
        issued = {
            a.contract_id for a in outcome.audits if a.type is AuditType.GENERATED
        }
        for contract in outcome.contracts:
            if contract.contract_id in issued:
                # A contract's issued_at is its acceptance's time (deterministic
                # across replays); the wall clock says when it really went out.
                self.issued(contract.issued_at, now)
        for note in outcome.notifications:
            self.warning(note.code)

    def _zero_labels(self) -> None:
        # Every known series exists from the start, so a rate over a counter
        # that has not moved yet reads 0 rather than nothing.
        for counter, values in (
            (self.events_in, EVENT_TYPES),
            (self.duplicates_suppressed, STAGES),
            (self.attempts, OUTCOMES),
            (self.dead_letters, REASONS),
            (self.warnings, WARNING_CODES),
        ):
            for value in _with_other(values):
                counter.labels(value)


def _bounded(value: str, allowed: frozenset[str]) -> str:
    text = str(value)
    return text if text in allowed else OTHER


def _with_other(values: Iterable[str]) -> list[str]:
    return sorted({*map(str, values), OTHER})
