"""Who may read what through the HTTP API: tokens minted and checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from streams.auth import (
    READ_ROLE,
    AuthError,
    ForbiddenError,
    NotVisibleError,
    TokenExpiredError,
    TokenInvalidError,
    TokenMissingError,
    authorize,
    mint_token,
)

SECRET = "a-test-secret-of-at-least-thirty-two-bytes"


def token(**overrides: Any) -> str:
    fields: dict[str, Any] = {
        "sub": "ops",
        "org_id": "org-a",
        "project_ids": ["prj-1"],
        "roles": [READ_ROLE],
        "ttl_seconds": 300,
        **overrides,
    }
    return mint_token(SECRET, **fields)


def header(**overrides: Any) -> str:
    return f"Bearer {token(**overrides)}"


def test_a_token_for_the_org_and_project_with_the_read_role_is_authorized() -> None:
    claims = authorize(header(), SECRET, "org-a", "prj-1")

    assert claims.sub == "ops"
    assert claims.project_ids == ("prj-1",) and claims.roles == (READ_ROLE,)
    assert claims.expires_at > datetime.now(UTC)


def test_the_secret_may_be_given_as_a_secret_string() -> None:
    minted = mint_token(
        SecretStr(SECRET),
        sub="ops",
        org_id="org-a",
        project_ids=["prj-1"],
        roles=[READ_ROLE],
        ttl_seconds=60,
    )

    assert authorize(f"Bearer {minted}", SecretStr(SECRET), "org-a", "prj-1")


def test_the_bearer_scheme_is_matched_without_regard_to_case() -> None:
    assert authorize(f"bearer {token()}", SECRET, "org-a", "prj-1")


def test_a_star_grants_every_project_of_the_org_and_no_other_org() -> None:
    star = header(project_ids=["*"])

    assert authorize(star, SECRET, "org-a", "prj-1")
    assert authorize(star, SECRET, "org-a", "prj-any")
    with pytest.raises(NotVisibleError):
        authorize(star, SECRET, "org-b", "prj-1")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (None, TokenMissingError),
        ("", TokenMissingError),
        ("Basic b3BzOnB3", TokenInvalidError),
        ("Bearer", TokenInvalidError),
        ("Bearer not-a-jwt", TokenInvalidError),
        ("Bearer a b", TokenInvalidError),
    ],
)
def test_a_missing_or_malformed_header_is_unauthenticated(
    value: str | None, error: type[AuthError]
) -> None:
    with pytest.raises(error) as raised:
        authorize(value, SECRET, "org-a", "prj-1")

    assert raised.value.status == 401


def test_a_token_signed_with_another_secret_is_unauthenticated() -> None:
    forged = mint_token(
        "another-secret-of-at-least-thirty-two-bytes",
        sub="ops",
        org_id="org-a",
        project_ids=["prj-1"],
        roles=[READ_ROLE],
        ttl_seconds=300,
    )

    with pytest.raises(TokenInvalidError) as raised:
        authorize(f"Bearer {forged}", SECRET, "org-a", "prj-1")
    assert raised.value.status == 401


def test_a_token_signed_with_another_algorithm_is_unauthenticated() -> None:
    payload = {"sub": "ops", "org_id": "org-a", "project_ids": ["*"]}
    unsigned = jwt.encode(
        {**payload, "roles": [READ_ROLE], "exp": 4102444800}, None, algorithm="none"
    )

    with pytest.raises(TokenInvalidError):
        authorize(f"Bearer {unsigned}", SECRET, "org-a", "prj-1")


def test_an_expired_token_is_unauthenticated() -> None:
    past = datetime.now(UTC) - timedelta(hours=2)

    with pytest.raises(TokenExpiredError) as raised:
        authorize(header(now=past, ttl_seconds=60), SECRET, "org-a", "prj-1")
    assert raised.value.status == 401


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "ops", "org_id": "org-a", "project_ids": ["prj-1"]},
        {"sub": "ops", "org_id": "org-a", "roles": [READ_ROLE]},
        {"sub": "ops", "org_id": 7, "project_ids": ["prj-1"], "roles": [READ_ROLE]},
        {"sub": "ops", "org_id": "org-a", "project_ids": "prj-1", "roles": []},
        {"sub": "", "org_id": "org-a", "project_ids": [], "roles": [READ_ROLE]},
        {"org_id": "org-a", "project_ids": ["prj-1"], "roles": [READ_ROLE]},
    ],
)
def test_a_signed_token_with_missing_or_mistyped_claims_is_unauthenticated(
    claims: dict[str, Any],
) -> None:
    signed = jwt.encode({**claims, "exp": 4102444800}, SECRET, algorithm="HS256")

    with pytest.raises(TokenInvalidError):
        authorize(f"Bearer {signed}", SECRET, "org-a", "prj-1")


def test_a_token_without_an_expiry_is_unauthenticated() -> None:
    claims = {"sub": "ops", "org_id": "org-a", "project_ids": ["*"]}
    signed = jwt.encode({**claims, "roles": [READ_ROLE]}, SECRET, algorithm="HS256")

    with pytest.raises(TokenInvalidError):
        authorize(f"Bearer {signed}", SECRET, "org-a", "prj-1")


@pytest.mark.parametrize("roles", [[], ["contracts:write"], ["CONTRACTS:READ"]])
def test_a_token_without_the_read_role_is_forbidden(roles: list[str]) -> None:
    with pytest.raises(ForbiddenError) as raised:
        authorize(header(roles=roles), SECRET, "org-a", "prj-1")

    assert raised.value.status == 403


@pytest.mark.parametrize(
    ("org_id", "project_id", "project_ids"),
    [
        ("org-b", "prj-1", ["prj-1"]),
        ("org-a", "prj-2", ["prj-1"]),
        ("org-a", "prj-1", []),
        ("org-b", "prj-1", ["*"]),
    ],
)
def test_another_org_or_project_is_not_found(
    org_id: str, project_id: str, project_ids: list[str]
) -> None:
    with pytest.raises(NotVisibleError) as raised:
        authorize(header(project_ids=project_ids), SECRET, org_id, project_id)

    assert raised.value.status == 404


def test_the_role_is_checked_before_the_tenant() -> None:
    with pytest.raises(ForbiddenError):
        authorize(header(roles=[]), SECRET, "org-b", "prj-1")


def test_ids_in_the_token_are_compared_in_canonical_form() -> None:
    upper = "9B0C6F3E-3D1E-4A51-9A57-0D3F3C6F1A01"

    assert authorize(header(project_ids=[upper]), SECRET, "org-a", upper.lower())


def test_the_token_command_prints_a_token_for_the_org_projects_and_roles(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from streams.cli import main

    monkeypatch.setenv("CONTRACTFLOW_JWT_SECRET", SECRET)
    argv = ["token", "--org", "org-a", "--project", "prj-1", "--project", "prj-2"]

    assert main([*argv, "--sub", "alice", "--ttl", "60"]) == 0

    printed = capsys.readouterr()
    claims = authorize(f"Bearer {printed.out.strip()}", SECRET, "org-a", "prj-2")
    assert claims.sub == "alice" and claims.roles == (READ_ROLE,)
    assert claims.project_ids == ("prj-1", "prj-2")
    assert "warning" not in printed.err


def test_the_token_command_grants_only_the_roles_it_is_given(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from streams.cli import main

    monkeypatch.setenv("CONTRACTFLOW_JWT_SECRET", SECRET)

    main(["token", "--org", "org-a", "--project", "*", "--role", "audit:read"])

    minted = capsys.readouterr().out.strip()
    with pytest.raises(ForbiddenError):
        authorize(f"Bearer {minted}", SECRET, "org-a", "prj-1")
