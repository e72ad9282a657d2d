"""The embedded stack for one machine: broker, redis-server, topics, workers."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from streams.admin import create_topics
from streams.devstack import (
    ChildProcess,
    EmbeddedBroker,
    RedisServer,
    env_for,
    exit_on_sigterm,
    free_port,
)
from streams.settings import EMBEDDED_TIMINGS, Settings
from streams.topics import Catalog

log = logging.getLogger(__name__)

# The ports a developer expects; another free one is taken when one is busy.
BROKER_PORT = 9092
REDIS_PORT = 6379
WEB_PORT = 6066


@dataclass
class Stack:
    """A running embedded stack and the settings that reach it."""

    settings: Settings
    broker: EmbeddedBroker
    redis: RedisServer
    root: Path


@contextmanager
def embedded_stack(root: Path) -> Iterator[Stack]:
    """Start the broker and redis-server under `root`, with every topic created."""
    root = root.resolve()
    with ExitStack() as stack:
        broker = stack.enter_context(
            EmbeddedBroker(root / "logs", port=_port_or_free(BROKER_PORT))
        )
        redis = stack.enter_context(
            RedisServer(
                root / "redis", port=_port_or_free(REDIS_PORT), log_dir=root / "logs"
            )
        )
        settings = Settings.model_validate(
            {
                "broker": broker.bootstrap,
                "redis_url": redis.url,
                "artifact_dir": root / "artifacts",
                "data_dir": root / "data",
                "web_port": _port_or_free(WEB_PORT),
                **EMBEDDED_TIMINGS,
            }
        )
        create_topics(settings, Catalog(settings))
        yield Stack(settings, broker, redis, root)


def worker_process(
    settings: Settings, log_path: Path, name: str = "worker"
) -> ChildProcess:
    """A worker as a child process, configured by `settings` through its env."""
    return ChildProcess(
        name,
        [sys.executable, "-m", "streams.cli", "worker"],
        log_path,
        env={**os.environ, **env_for(settings)},
    )


def run_dev(root: Path) -> int:
    """Run the embedded stack and one worker in the foreground until stopped."""
    exit_on_sigterm()
    with embedded_stack(root) as stack:
        print("contractflow dev: embedded stack is up; these settings reach it:")
        for name, value in sorted(env_for(stack.settings).items()):
            if name != "CONTRACTFLOW_JWT_SECRET":
                print(f"  export {name}={value}")
        print(f"logs: {stack.root / 'logs'}   artifacts: {stack.settings.artifact_dir}")
        print("Ctrl-C stops the worker, the broker and redis-server.", flush=True)
        from streams.worker import run_worker

        try:
            return run_worker(stack.settings)
        except KeyboardInterrupt:
            return 0


def _port_or_free(port: int) -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port
