"""Dead letters: what is kept of a record the pipeline gave up on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from contracts.errors import ContractflowError, ReasonCode
from contracts.models import DeadLetter

# Enough to diagnose any sane record; the size and hash always identify the rest.
RAW_CAP_BYTES = 64 * 1024
NULL_KEY = "null-key"


@dataclass(frozen=True)
class Origin:
    """Where a record was read: topic, partition, offset, key and raw value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def key_text(self) -> str | None:
        if self.key is None:
            return None
        return self.key.decode("utf-8", errors="replace")

    @property
    def dlq_key(self) -> str:
        """The key of its dead letter: the original key, or `null-key`."""
        return self.key_text or NULL_KEY

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


def dead_letter(
    origin: Origin,
    error: BaseException,
    *,
    now: datetime,
    attempts: int = 1,
    contract_key: str | None = None,
    trace_id: str = "",
) -> DeadLetter:
    """The dead letter of `origin`, failed with `error`."""
    raw = origin.value or b""
    if isinstance(error, ContractflowError):
        code, reason = error.reason_code, error.reason
    else:
        code, reason = ReasonCode.EXHAUSTED, f"unexpected error: {error!r}"
    return DeadLetter(
        reason_code=code.value,
        reason=reason,
        error_class=type(error).__name__,
        source_topic=origin.topic,
        partition=origin.partition,
        offset=origin.offset,
        key=origin.key_text,
        raw=raw[:RAW_CAP_BYTES],
        raw_size=len(raw),
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        attempts=attempts,
        contract_key=contract_key,
        trace_id=trace_id,
        occurred_at=now,
    )
