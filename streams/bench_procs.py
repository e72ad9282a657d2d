"""The benchmark's child processes: workers, baselines and the profiler.

Every child runs in its own session with its output in a log file under the
benchmark's directory, and is stopped by the `with` block or `finally` that
started it, whatever happens in between.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from streams.bench_baselines import read_progress
from streams.bench_load import BenchError, create_topic, produce_json
from streams.bench_report import Throughput, progress_rate
from streams.devrun import worker_process
from streams.devstack import ChildProcess, free_port
from streams.settings import Settings

log = logging.getLogger(__name__)

READY_LINE = "Worker ready"
# A worker joins its group after one rebalance timeout (6 s) on the embedded
# broker; three minutes leaves room for a loaded two-core machine.
READY_TIMEOUT_SECONDS = 180.0
# No new output for this long means stuck, not slow: an event takes
# milliseconds, and a parked retry comes back within seconds.
STALL_SECONDS = 90.0
POLL_SECONDS = 0.2
PROFILE_RATE_HZ = 100
# Tansu serves Quix Streams only from topics created with an explicit
# retention; a week outlives any benchmark.
RETAINED = {"cleanup.policy": "delete", "retention.ms": str(7 * 24 * 3_600_000)}

BASELINES: tuple[tuple[str, str], ...] = (
    ("faust-naive", "naive Faust agent (JSON, table, send)"),
    ("faust-bare", "bare Faust agent (consume only)"),
    ("quix", "Quix Streams (state dedupe, produce)"),
    ("confluent", "confluent-kafka loop (dict dedupe, produce)"),
)


@contextmanager
def running_workers(
    settings: Settings, root: Path, count: int
) -> Iterator[list[ChildProcess]]:
    """Run `count` workers of one group, each with its own web port and data dir."""
    with ExitStack() as stack:
        children = []
        for n in range(count):
            name = f"{settings.topic_prefix}worker-{n}"
            data_dir = root / "data" / name
            data_dir.mkdir(parents=True, exist_ok=True)
            own = settings.model_copy(
                update={"web_port": free_port(), "data_dir": data_dir}
            )
            child = worker_process(own, root / "logs" / f"{name}.log", name=name)
            stack.callback(child.stop)
            child.start()
            children.append(child)
        yield children


def wait_for_line(
    child: ChildProcess, line: str, since: float, timeout: float = READY_TIMEOUT_SECONDS
) -> float:
    """Wait until `line` is in the child's log; return the seconds since `since`."""
    deadline = time.monotonic() + timeout
    while True:
        if line in child.log_path.read_text(errors="replace"):
            return time.monotonic() - since
        if not child.running():
            raise BenchError(
                f"{child.name} exited; its log ends with:\n{child.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise BenchError(f"{child.name} did not log {line!r} within {timeout:g}s")
        time.sleep(POLL_SECONDS)


def cpu_seconds(child: ChildProcess) -> float | None:
    """Return the CPU time the child has used so far (user and system), in s."""
    if child.pid is None:
        return None
    try:
        stat = Path(f"/proc/{child.pid}/stat").read_text()
    except OSError:
        return None
    # The fields after the command name, which is in parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(child: ChildProcess) -> float | None:
    """Return the child's peak resident memory (VmHWM) in MiB, while it runs."""
    if child.pid is None:
        return None
    try:
        status = Path(f"/proc/{child.pid}/status").read_text()
    except OSError:
        return None
    for row in status.splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    return None


@contextmanager
def profiling(
    child: ChildProcess, output: Path | None, seconds: float
) -> Iterator[None]:
    """Sample `child` with py-spy for `seconds` while the block runs.

    py-spy stops by itself after `seconds` and only then writes its file, so
    leaving the block waits for it; samples of an idle worker are dropped.
    """
    if output is None:
        yield
        return
    spy = _py_spy(child, output, seconds)
    spy.start()
    try:
        yield
        deadline = time.monotonic() + seconds + 30
        while spy.running() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
    finally:
        spy.stop()
    if not output.exists():
        raise BenchError(f"py-spy wrote no profile; see {spy.log_path}")


def _py_spy(child: ChildProcess, output: Path, seconds: float) -> ChildProcess:
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(binary).exists():
        raise BenchError("--profile needs py-spy: pip install 'contractflow[bench]'")
    argv = [
        binary,
        "record",
        "--pid",
        str(child.pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(PROFILE_RATE_HZ),
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    return ChildProcess("py-spy", argv, child.log_path.with_suffix(".py-spy.log"))


def measure_baselines(
    settings: Settings, root: Path, events: list[dict[str, Any]]
) -> list[Throughput]:
    """Run every baseline in turn on a copy of `events`; return their rates."""
    source = f"{settings.topic_prefix}bench.source"
    create_topic(settings, source, RETAINED)
    produce_json(settings, source, events, "assignment_id")
    return [
        measure_baseline(settings, root, kind, name, source, len(events))
        for kind, name in BASELINES
    ]


def measure_baseline(
    settings: Settings, root: Path, kind: str, name: str, source: str, expect: int
) -> Throughput:
    """Run one baseline until it has processed `expect` events, or is stuck."""
    sink = f"{settings.topic_prefix}bench.{kind}.out"
    create_topic(settings, sink, RETAINED)
    progress = root / f"{settings.topic_prefix}{kind}.progress.json"
    child = _baseline(settings, root, kind, source, sink, expect, progress)
    child.start()
    try:
        count, first, last, note = _await_progress(child, progress, expect)
        rss = peak_rss_mb(child)
    finally:
        child.stop()
    rate = progress_rate(count, first, last) if count >= expect else None
    return Throughput(
        name=name, unit="events/s", count=count, rate=rate, peak_rss_mb=rss, note=note
    )


def _baseline(
    settings: Settings,
    root: Path,
    kind: str,
    source: str,
    sink: str,
    expect: int,
    progress: Path,
) -> ChildProcess:
    prefix = settings.topic_prefix
    argv = [
        sys.executable,
        "-m",
        "streams.bench_baselines",
        kind,
        *("--broker", settings.broker, "--source", source, "--sink", sink),
        *("--group", f"{prefix}{kind}", "--expect", str(expect)),
        *("--progress", str(progress), "--datadir", str(_data_dir(root, prefix, kind))),
        *("--web-port", str(free_port()), "--partitions", str(settings.partitions)),
    ]
    return ChildProcess(kind, argv, root / "logs" / f"{prefix}{kind}.log")


def _await_progress(
    child: ChildProcess, path: Path, expect: int
) -> tuple[int, float | None, float | None, str]:
    """Poll the progress file until `expect` events; say why if they never come."""
    started = changed = time.monotonic()
    count = 0
    while True:
        progress = read_progress(path) or {}
        if progress.get("count", 0) != count:
            count, changed = int(progress["count"]), time.monotonic()
        first, last = progress.get("first"), progress.get("last")
        if count >= expect:
            return count, first, last, ""
        if not child.running():
            return count, first, last, f"not measured: exited ({_last_line(child)})"
        waited = time.monotonic() - (changed if count else started)
        if waited > (STALL_SECONDS if count else READY_TIMEOUT_SECONDS):
            return count, first, last, f"not measured: stalled at {count:,}/{expect:,}"
        time.sleep(POLL_SECONDS)


def _last_line(child: ChildProcess) -> str:
    lines = [line for line in child.log_tail(40).splitlines() if line.strip()]
    return lines[-1][:160] if lines else "no output"


def _data_dir(root: Path, prefix: str, kind: str) -> Path:
    path = root / "data" / f"{prefix}{kind}"
    path.mkdir(parents=True, exist_ok=True)
    return path
