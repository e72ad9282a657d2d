"""Records of the domain, as frozen pydantic models.

Field names follow the wire records one to one, so a model dumps straight
into its Avro schema (``schemas/``) and loads from either Avro or JSON.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


class Record(BaseModel):
    """Base of every record: immutable, tolerant of fields it does not know."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def as_utc(value: datetime) -> datetime:
    """Return `value` in UTC, or raise ValueError if UTC cannot hold it."""
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        # Year 1 ahead of UTC, or year 9999 behind it: the instant falls
        # outside what a datetime holds. A ValueError makes pydantic report a
        # schema error, so the record is dead-lettered as SCHEMA.
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from exc


class EventType(StrEnum):
    PROPOSED = "AssignmentProposed"
    ACCEPTED = "AssignmentAccepted"
    CHANGED = "AssignmentChanged"
    CANCELED = "AssignmentCanceled"
    DECLINED = "AssignmentDeclined"


class Source(StrEnum):
    BACKEND = "backend"
    FRONTEND = "frontend"


class RateUnit(StrEnum):
    DAY = "DAY"
    HOUR = "HOUR"
    MONTH = "MONTH"
    FIXED = "FIXED"


class Rate(Record):
    amount: Decimal
    currency: str
    unit: RateUnit

    @field_validator("amount", mode="before")
    @classmethod
    def _exact_amount(cls, value: Any) -> Any:
        # A float has already lost the exact amount the producer meant.
        if isinstance(value, float):
            raise ValueError("amount must be an exact decimal string, not a float")
        if isinstance(value, bool):
            raise ValueError("amount must be an exact decimal string")
        return value


class OrganizationParty(Record):
    legal_name: str
    registration_id: str
    address: str
    representative: str


class CollaboratorParty(Record):
    legal_name: str
    registration_id: str
    address: str
    email: str


class Parties(Record):
    organization: OrganizationParty | None = None
    collaborator: CollaboratorParty | None = None


class AssignmentEvent(Record):
    """A lifecycle event of an assignment, as producers put it on `assignments`."""

    event_id: str
    event_type: EventType
    occurred_at: AwareDatetime
    trace_id: str = ""
    actor_id: str = "system"
    source: Source = Source.BACKEND
    org_id: str
    project_id: str
    mission_id: str
    assignment_id: str
    collaborator_id: str | None = None
    role: str | None = None
    rate: Rate | None = None
    start_date: date | None = None
    end_date: date | None = None
    contract_template_version: str | None = None
    rationale: str | None = None
    bundle_id: str | None = None
    parties: Parties | None = None

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class Terms(Record):
    """What a collaborator accepted on one assignment; fixed from acceptance on."""

    assignment_id: str
    mission_id: str
    collaborator_id: str
    role: str
    rate: Rate
    start_date: date
    end_date: date


class AssignmentSnapshot(Record):
    """One assignment as a job carries it: its terms and the parties it named."""

    terms: Terms
    parties: Parties | None = None
    accepted_at: AwareDatetime
    actor_id: str = "system"


class JobKind(StrEnum):
    GENERATE = "GENERATE"
    CANCEL = "CANCEL"
    RESOLVE = "RESOLVE"


class ContractJob(Record):
    """A request to the generator, keyed by contract_key on `contract.jobs`."""

    kind: JobKind
    contract_key: str
    org_id: str
    project_id: str
    assignments: tuple[AssignmentSnapshot, ...]
    contract_template_version: str
    amendment_sequence: int = 0
    supersedes_contract_id: str | None = None
    issued_at: AwareDatetime
    attempt: int = 1
    first_attempt_at: AwareDatetime
    trace_id: str = ""
    cause: str
    actor_id: str = "system"
    reason: str | None = None

    @property
    def assignment_ids(self) -> tuple[str, ...]:
        return tuple(sorted(a.terms.assignment_id for a in self.assignments))


class ContractStatus(StrEnum):
    ISSUED = "ISSUED"
    VOID_REQUESTED = "VOID_REQUESTED"
    VOIDED = "VOIDED"


class NamedCollaborator(CollaboratorParty):
    collaborator_id: str


class ContractParties(Record):
    organization: OrganizationParty
    collaborators: tuple[NamedCollaborator, ...]


class Document(Record):
    uri: str
    sha256: str
    media_type: str
    size: int


class ContractBody(Record):
    """What a contract document shows; the same for a draft and an issue."""

    org_id: str
    project_id: str
    parties: ContractParties
    terms: tuple[Terms, ...]
    contract_template_version: str
    amendment_sequence: int = 0
    supersedes_contract_id: str | None = None
    issued_at: AwareDatetime


class Contract(Record):
    """An issued contract or amendment, keyed by contract_id on `contracts`."""

    contract_id: str
    contract_key: str
    org_id: str
    project_id: str
    assignment_ids: tuple[str, ...]
    parties: ContractParties
    terms: tuple[Terms, ...]
    contract_template_version: str
    amendment_sequence: int
    supersedes_contract_id: str | None
    document: Document
    trace_id: str
    issued_at: AwareDatetime
    status: ContractStatus = ContractStatus.ISSUED


class AuditType(StrEnum):
    GENERATION_ATTEMPT = "contract.generation_attempt"
    GENERATED = "contract.generated"
    GENERATION_FAILED = "contract.generation_failed"
    AMENDMENT_REQUESTED = "contract.amendment_requested"
    VOID_REQUESTED = "contract.void_requested"
    EXPECTED_MISSING = "contract.expected_missing"
    GENERATION_SKIPPED = "contract.generation_skipped"
    CHANGE_REFUSED = "contract.change_refused"
    REQUEST_REFUSED = "contract.request_refused"
    VOID_RESOLVED = "contract.void_resolved"


class AuditEvent(Record):
    audit_id: str
    type: AuditType
    org_id: str
    project_id: str
    mission_id: str | None = None
    assignment_id: str | None = None
    contract_id: str | None = None
    actor_id: str = "system"
    attempt: int = 0
    outcome: str
    trace_id: str = ""
    correlation_id: str
    payload: dict[str, str] = Field(default_factory=dict)
    occurred_at: AwareDatetime


class NotificationCode(StrEnum):
    EXPECTED_WARNING = "CONTRACT_EXPECTED_WARNING"
    EXPECTED_RESOLVED = "CONTRACT_EXPECTED_RESOLVED"
    CHANGE_REFUSED = "CONTRACT_CHANGE_REFUSED"
    REQUEST_REFUSED = "CONTRACT_REQUEST_REFUSED"


class Severity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class Notification(Record):
    notification_id: str
    code: NotificationCode
    severity: Severity
    org_id: str
    project_id: str
    mission_id: str | None = None
    assignment_id: str | None = None
    message: str
    occurred_at: AwareDatetime
    trace_id: str = ""


class DeadLetter(Record):
    reason_code: str
    reason: str
    error_class: str
    source_topic: str
    partition: int
    offset: int
    key: str | None
    raw: bytes
    raw_size: int
    raw_sha256: str
    attempts: int = 0
    contract_key: str | None = None
    trace_id: str = ""
    occurred_at: AwareDatetime


class OrganizationRecord(OrganizationParty):
    """A row of the `organizations` reference topic."""

    org_id: str


class CollaboratorRecord(CollaboratorParty):
    """A row of the `collaborators` reference topic."""

    collaborator_id: str


class PaymentBlock(Record):
    """A hold on payments for one assignment, keyed by scope."""

    scope: str
    org_id: str
    project_id: str
    assignment_id: str
    contract_id: str
    blocked: bool
    reason: str
    since: AwareDatetime
    resolved_at: AwareDatetime | None = None
    trace_id: str = ""


class PreviewReply(Record):
    """A rendered draft on `contract.previews`; it never carries a contract id."""

    request_id: str
    media_type: str
    document: bytes
    terms: tuple[Terms, ...]
    draft: bool = True
    trace_id: str = ""
    occurred_at: AwareDatetime
