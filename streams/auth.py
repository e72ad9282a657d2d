"""Bearer tokens of the HTTP API: HS256 JWTs minted and checked here.

AuthError                 refused; `status` is the HTTP answer
├── UnauthenticatedError  401: no usable token
│   ├── TokenMissingError     no Authorization header
│   ├── TokenInvalidError     not a bearer token, bad signature, bad claims
│   └── TokenExpiredError     past its `exp`
├── ForbiddenError        403: the token lacks the role
└── NotVisibleError       404: another org or project, answered exactly
                          as one that does not exist
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import jwt
from pydantic import SecretStr

from contracts.errors import ContractflowError
from contracts.keys import canonical_id

ALGORITHM = "HS256"
READ_ROLE = "contracts:read"
ALL_PROJECTS = "*"
BEARER = "bearer"
_REQUIRED_CLAIMS = ("sub", "org_id", "project_ids", "roles", "exp")


class AuthError(ContractflowError):
    """A request the API refuses; `status` is the HTTP status to answer with."""

    status: ClassVar[int] = 401


class UnauthenticatedError(AuthError):
    status = 401


class TokenMissingError(UnauthenticatedError):
    """The request carries no Authorization header."""


class TokenInvalidError(UnauthenticatedError):
    """The header is not a bearer token, or the token is not one of ours."""


class TokenExpiredError(UnauthenticatedError):
    """The token was good, and its `exp` has passed."""


class ForbiddenError(AuthError):
    status = 403


class NotVisibleError(AuthError):
    status = 404


@dataclass(frozen=True)
class Claims:
    """What a valid token says about its bearer."""

    sub: str
    org_id: str
    project_ids: tuple[str, ...]
    roles: tuple[str, ...]
    expires_at: datetime

    def sees(self, org_id: str, project_id: str) -> bool:
        """Tell whether the token reaches `project_id` of `org_id`."""
        if canonical_id(self.org_id) != canonical_id(org_id):
            return False
        if ALL_PROJECTS in self.project_ids:
            return True
        wanted = canonical_id(project_id)
        return any(canonical_id(p) == wanted for p in self.project_ids)


def mint_token(
    secret: str | SecretStr,
    *,
    sub: str,
    org_id: str,
    project_ids: Sequence[str],
    roles: Sequence[str],
    ttl_seconds: float,
    now: datetime | None = None,
) -> str:
    """Return a signed token for `sub`, valid for `ttl_seconds` from `now`."""
    issued = now or datetime.now(UTC)
    payload = {
        "sub": sub,
        "org_id": org_id,
        "project_ids": list(project_ids),
        "roles": list(roles),
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl_seconds)).timestamp()),
    }
    return jwt.encode(payload, _key(secret), algorithm=ALGORITHM)


def authorize(
    header_value: str | None,
    secret: str | SecretStr,
    org_id: str,
    project_id: str,
    *,
    role: str = READ_ROLE,
) -> Claims:
    """Return the claims of the bearer if it may read `project_id` of `org_id`."""
    claims = verify(_bearer_token(header_value), secret)
    if role not in claims.roles:
        raise ForbiddenError(f"{claims.sub} lacks the role {role}")
    if not claims.sees(org_id, project_id):
        raise NotVisibleError(f"{claims.sub} does not reach {org_id}/{project_id}")
    return claims


def verify(token: str, secret: str | SecretStr) -> Claims:
    """Return the claims of `token` once its signature and expiry are checked."""
    try:
        payload = jwt.decode(
            token,
            _key(secret),
            algorithms=[ALGORITHM],
            options={"require": list(_REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpiredError("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenInvalidError(f"token refused: {exc}") from exc
    return _claims(payload)


def _bearer_token(header_value: str | None) -> str:
    if not header_value:
        raise TokenMissingError("no Authorization header")
    scheme, _, token = header_value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != BEARER or not token or " " in token:
        raise TokenInvalidError("the Authorization header is not a bearer token")
    return token


def _claims(payload: dict[str, Any]) -> Claims:
    sub, org_id = payload["sub"], payload["org_id"]
    project_ids, roles = payload["project_ids"], payload["roles"]
    if not (_is_text(sub) and _is_text(org_id)):
        raise TokenInvalidError("sub and org_id must be non-empty strings")
    if not (_is_text_list(project_ids) and _is_text_list(roles)):
        raise TokenInvalidError("project_ids and roles must be lists of strings")
    return Claims(
        sub=sub,
        org_id=org_id,
        project_ids=tuple(project_ids),
        roles=tuple(roles),
        expires_at=datetime.fromtimestamp(payload["exp"], UTC),
    )


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list) and all(_is_text(item) for item in value)


def _key(secret: str | SecretStr) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret
