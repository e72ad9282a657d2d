"""The embedded stack every integration test shares, and settings to reach it.

One broker and one redis-server run for the whole session. Each test gets its
own topic prefix from `settings_factory`, so tests never read each other's
records. A test that stops Redis must start it again before it ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol
from uuid import uuid4

import pytest

from streams.admin import create_topics
from streams.devstack import EmbeddedBroker, RedisServer, env_for, free_port
from streams.settings import Settings
from streams.topics import Catalog

HERE = Path(__file__).parent

# Short group timings: the embedded broker completes a join only after the
# rebalance timeout. Small retry timings keep retry tests to a second or two.
TEST_SETTINGS: dict[str, Any] = {
    "partitions": 4,
    "session_timeout_seconds": 6,
    "rebalance_timeout_seconds": 6,
    "heartbeat_interval_seconds": 1,
    "retry_base_seconds": 0.05,
    "retry_cap_seconds": 0.5,
    "retry_max_attempts": 4,
}


class SettingsFactory(Protocol):
    def __call__(self, **overrides: Any) -> Settings: ...


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this directory as an integration test."""
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A Tansu broker on a free port, for the whole session."""
    with EmbeddedBroker(tmp_path_factory.mktemp("broker")) as running:
        yield running


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server with append-only persistence, for the whole session."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as running:
        yield running


@pytest.fixture
def settings_factory(
    broker: EmbeddedBroker, redis_server: RedisServer, tmp_path: Path
) -> SettingsFactory:
    """Make settings for the embedded stack, each with a topic prefix of its own."""

    def make(**overrides: Any) -> Settings:
        prefix = f"t{uuid4().hex[:8]}."
        root = tmp_path / prefix.rstrip(".")
        values: dict[str, Any] = {
            **TEST_SETTINGS,
            "broker": broker.bootstrap,
            "redis_url": redis_server.url,
            "artifact_dir": root / "artifacts",
            "data_dir": root / "data",
            "web_port": free_port(),
            "topic_prefix": prefix,
            # A developer's .env must not change what the tests run against.
            "_env_file": None,
            **overrides,
        }
        return Settings(**values)

    return make


@pytest.fixture
def settings(settings_factory: SettingsFactory) -> Settings:
    """Settings for the embedded stack under a fresh topic prefix."""
    return settings_factory()


@pytest.fixture
def catalog(settings: Settings) -> Catalog:
    """The catalog of `settings`, with every topic already created."""
    catalog = Catalog(settings)
    create_topics(settings, catalog)
    return catalog


@pytest.fixture
def run_cli() -> CliRunner:
    """Run `contractflow ARGS...` in a subprocess with the env of `settings`."""

    def run(
        settings: Settings, *args: str, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **env_for(settings)}
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
