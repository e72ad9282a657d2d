"""Keys and ids of the domain, derived deterministically from their inputs.

Every function here is pure and its output is part of the wire contract:
a key or id written to Kafka must be recomputed identically by every worker,
on every replay, by every later version of the code. The encodings are
therefore versioned, and the golden tests pin a few of their values.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from collections.abc import Iterable
from urllib.parse import quote, unquote

from contracts.errors import ValidationError

# Never change these: every contract id and derived id ever issued hangs on
# them. They equal uuid5(NAMESPACE_URL, "urn:contractflow:contract") and
# uuid5(NAMESPACE_URL, "urn:contractflow:derived"); a test checks the match.
CONTRACT_NAMESPACE = uuid.UUID("155be1ea-4321-5971-900a-a0bd5b0f4b06")
DERIVED_NAMESPACE = uuid.UUID("d4d84d5f-033d-5d3d-83a3-ff38c05d9f92")

CONTRACT_KEY_PREFIX = "ck1-"

# Tags inside the hashed encodings, so a future encoding can never produce
# the same bytes as this one.
_CONTRACT_KEY_TAG = "contractflow/contract_key/1"
_DERIVED_ID_TAG = "contractflow/derived_id/1"

_UUID_SHAPE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_CONTRACT_KEY_SHAPE = re.compile(r"ck[1-9][0-9]*-[0-9a-f]{64}")
_SCOPE_PARTS = ("org_id", "project_id", "assignment_id")


def canonical_id(value: str) -> str:
    """Return the form of an id that equality is decided on."""
    normalized = unicodedata.normalize("NFC", value)
    if _UUID_SHAPE.fullmatch(normalized):
        return normalized.lower()
    return normalized


def contract_key(
    org_id: str,
    project_id: str,
    assignment_ids: Iterable[str],
    contract_template_version: str,
    amendment_sequence: int = 0,
) -> str:
    """Return the idempotency key of one contract: ``ck1-`` and a sha256."""
    ids = _canonical_assignment_ids(assignment_ids)
    if isinstance(amendment_sequence, bool) or amendment_sequence < 0:
        raise ValidationError(
            f"amendment_sequence must be an integer >= 0, got {amendment_sequence!r}"
        )
    encoded = _encode(
        [
            _CONTRACT_KEY_TAG,
            _required("org_id", org_id),
            _required("project_id", project_id),
            ids,
            _required("contract_template_version", contract_template_version),
            amendment_sequence,
        ]
    )
    return CONTRACT_KEY_PREFIX + hashlib.sha256(encoded).hexdigest()


def contract_id(contract_key: str) -> str:
    """Return the contract id that a contract key always maps to."""
    if not _CONTRACT_KEY_SHAPE.fullmatch(contract_key):
        raise ValidationError(f"{contract_key!r} is not a contract key")
    return str(uuid.uuid5(CONTRACT_NAMESPACE, contract_key))


def scope_key(org_id: str, project_id: str, assignment_id: str) -> str:
    """Return the tenant-scoped key ``org/project/assignment`` of an assignment."""
    parts = zip(_SCOPE_PARTS, (org_id, project_id, assignment_id), strict=True)
    return "/".join(quote(_required(name, value), safe="") for name, value in parts)


def parse_scope(scope: str) -> tuple[str, str, str]:
    """Split a scope key back into org_id, project_id and assignment_id."""
    pieces = scope.split("/")
    if len(pieces) != len(_SCOPE_PARTS):
        raise ValidationError(f"scope {scope!r} does not have three parts")
    try:
        org_id, project_id, assignment_id = (
            unquote(piece, errors="strict") for piece in pieces
        )
    except UnicodeDecodeError as exc:
        raise ValidationError(f"scope {scope!r} is not UTF-8 encoded") from exc
    # Only the one encoding scope_key writes is accepted, so that a scope
    # parsed here always names the same state as the key it came from.
    if scope_key(org_id, project_id, assignment_id) != scope:
        raise ValidationError(f"scope {scope!r} is not in canonical form")
    return org_id, project_id, assignment_id


def derived_id(kind: str, *parts: str | int | None) -> str:
    """Return a deterministic UUIDv5 for an output record of the given kind.

    Used for ids that a replay must reproduce, such as audit_id and
    notification_id. The name hashed is a tagged JSON array of ``kind`` and
    the parts, so the parts' boundaries and types take part in the id:
    ``("a|b", "c")`` and ``("a", "b|c")`` differ, and so do ``"1"``, ``1`` and
    ``None``. Strings go through :func:`canonical_id` first, so ids that
    compare equal give equal derived ids. Booleans are refused, since they
    would pass for integers.
    """
    if not kind:
        raise ValueError("derived_id needs a non-empty kind")
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, str | int | None):
            raise TypeError(f"derived_id part {part!r} is not a str, int or None")
    encoded = _encode(
        [
            _DERIVED_ID_TAG,
            canonical_id(kind),
            [canonical_id(p) if isinstance(p, str) else p for p in parts],
        ]
    )
    return str(uuid.uuid5(DERIVED_NAMESPACE, encoded.decode("ascii")))


def _canonical_assignment_ids(assignment_ids: Iterable[str]) -> list[str]:
    if isinstance(assignment_ids, str):
        # A lone string is iterable too, and would be split into characters.
        raise ValidationError("assignment_ids must be a collection of ids")
    ids = {_required("assignment_id", value) for value in assignment_ids}
    if not ids:
        raise ValidationError("a contract needs at least one assignment_id")
    return sorted(ids)


def _required(name: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{name} must be a non-empty string, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate survives JSON decoding but cannot go on the wire.
        raise ValidationError(f"{name} {value!r} is not valid Unicode") from exc
    return canonical_id(value)


def _encode(value: object) -> bytes:
    # ensure_ascii escapes every non-ASCII character, lone surrogates
    # included, so the bytes depend on nothing but the code points.
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.encode("ascii")
