"""Errors of contractflow.

    ContractflowError
    ├── PermanentError      retrying cannot help: dead-letter at once
    │   ├── DecodeError     bytes that are neither Avro nor JSON (DECODE)
    │   ├── SchemaError     decoded, but not the record's shape (SCHEMA)
    │   └── ValidationError the record breaks a business rule (VALIDATION, …)
    └── TransientError      may succeed later: retry with backoff
        └── MissingPartyError  party reference data not there yet (MISSING_PARTY)

Every error carries a ``reason_code`` from the dead-letter vocabulary.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    DECODE = "DECODE"
    SCHEMA = "SCHEMA"
    VALIDATION = "VALIDATION"
    UNKNOWN_TEMPLATE = "UNKNOWN_TEMPLATE"
    TENANT_MISMATCH = "TENANT_MISMATCH"
    NULL_KEY = "NULL_KEY"
    TOO_LARGE = "TOO_LARGE"
    MISSING_PARTY = "MISSING_PARTY"
    EXHAUSTED = "EXHAUSTED"
    REFUSED = "REFUSED"


class ContractflowError(Exception):
    """Root of every error raised by contractflow."""

    reason_code: ReasonCode = ReasonCode.VALIDATION

    def __init__(self, reason: str, *, reason_code: ReasonCode | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if reason_code is not None:
            self.reason_code = reason_code


class PermanentError(ContractflowError):
    """Retrying cannot help; the record goes to the dead letter topic."""


class DecodeError(PermanentError):
    reason_code = ReasonCode.DECODE


class SchemaError(PermanentError):
    reason_code = ReasonCode.SCHEMA


class ValidationError(PermanentError):
    reason_code = ReasonCode.VALIDATION


class TransientError(ContractflowError):
    """May succeed later; the job is retried with backoff."""

    reason_code = ReasonCode.EXHAUSTED


class MissingPartyError(TransientError):
    reason_code = ReasonCode.MISSING_PARTY
