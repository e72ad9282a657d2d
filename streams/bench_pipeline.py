"""Measuring the pipeline: workers on a backlog, at a paced rate, and recovering.

Throughput counts distinct contracts on `contracts` between the first and the
last one, by record timestamp: the workers have joined their group before the
first acceptance is produced, so start-up and the join stay out of it.
Latency is a contract's record timestamp minus its acceptance's, matched by
the assignment the contract names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from streams.bench_load import (
    OutputWatcher,
    Workload,
    issued_by_triple,
    produce_json,
    produce_paced,
    registry_entry,
    triple,
    write_registry,
)
from streams.bench_procs import (
    READY_LINE,
    STALL_SECONDS,
    cpu_seconds,
    peak_rss_mb,
    profiling,
    running_workers,
    wait_for_line,
)
from streams.bench_report import (
    Latency,
    Recovery,
    Throughput,
    latency,
    rate_between,
    steady_rate,
)
from streams.devstack import ChildProcess
from streams.scenario import Triple
from streams.settings import Settings
from streams.topics import Catalog

# Either Faust's recovery read the changelog, or the bulk load did.
RECOVERED_LINES = (
    "Done reading from changelog topics",
    "changelogs loaded table=registry",
)
# Latency is measured at half the rate the backlog ran at, as the target says.
PACED_SHARE = 0.5
# Reading a large changelog back takes a while; allow a few thousand keys a
# second on top of the usual start-up.
RECOVERY_KEYS_PER_SECOND = 2000


@dataclass(frozen=True)
class Profile:
    """Where to write a py-spy profile of the first worker, and for how long."""

    output: Path
    seconds: float


@dataclass(frozen=True)
class PipelineRun:
    """What one run of the pipeline measured."""

    throughput: Throughput
    latencies: list[Latency]


def measure_pipeline(
    settings: Settings,
    root: Path,
    work: Workload,
    *,
    workers: int = 1,
    paced_seconds: float = 0.0,
    profile: Profile | None = None,
) -> PipelineRun:
    """Run `workers` workers on the backlog, then paced; return what they did."""
    catalog = Catalog(settings)
    produce_json(settings, catalog.organizations.name, work.organizations, "org_id")
    produce_json(
        settings, catalog.collaborators.name, work.collaborators, "collaborator_id"
    )
    with running_workers(settings, root, workers) as children:
        started = time.monotonic()
        ready = max(wait_for_line(child, READY_LINE, started) for child in children)
        watcher = OutputWatcher(settings, catalog.contracts.name, catalog.dlq.name)
        try:

            def alive() -> bool:
                return all(child.running() for child in children)

            run = _backlog(settings, watcher, work.bulk, alive, profile, children)
            if paced_seconds > 0 and run.throughput.rate:
                rate = run.throughput.rate * PACED_SHARE
                paced = _paced(
                    settings, watcher, work.paced, rate, paced_seconds, alive
                )
                run.latencies.extend([paced] if paced else [])
            rss = max(peak_rss_mb(child) or 0.0 for child in children)
        finally:
            watcher.close()
    throughput = replace(run.throughput, peak_rss_mb=rss or None, ready_seconds=ready)
    return PipelineRun(throughput, run.latencies)


def _backlog(
    settings: Settings,
    watcher: OutputWatcher,
    events: list[dict[str, Any]],
    alive: Callable[[], bool],
    profile: Profile | None,
    children: list[ChildProcess],
) -> PipelineRun:
    """Produce every event at once, then read until each has its contract."""
    topic = Catalog(settings).assignments.name
    cpu_before = _cpu_seconds(children)
    accepted = _stamped(events, produce_json(settings, topic, events, "assignment_id"))
    output, seconds = (profile.output, profile.seconds) if profile else (None, 0.0)
    with profiling(children[0], output, seconds):
        watcher.wait_for(len(events), stall=STALL_SECONDS, alive=alive)
    cpu_after = _cpu_seconds(children)
    stamps = [stamp for stamp, _ in watcher.outputs.first_seen.values()]
    backlog = latency("backlog", accepted, issued_by_triple(watcher.outputs))
    dead = watcher.outputs.dead_letters
    throughput = Throughput(
        name="pipeline",
        unit="contracts/s",
        count=len(stamps),
        rate=rate_between(stamps),
        steady_rate=steady_rate(stamps),
        cpu_ms_per_item=(
            (cpu_after - cpu_before) * 1000 / len(stamps)
            if cpu_before is not None and cpu_after is not None and stamps
            else None
        ),
        note=f"{dead} dead letters" if dead else "",
    )
    return PipelineRun(throughput, [backlog] if backlog else [])


def _cpu_seconds(children: list[ChildProcess]) -> float | None:
    """The CPU time of all `children` so far, or None if one cannot be read."""
    times = [cpu_seconds(child) for child in children]
    return None if None in times else sum(t for t in times if t is not None)


def _paced(
    settings: Settings,
    watcher: OutputWatcher,
    pool: list[dict[str, Any]],
    rate: float,
    seconds: float,
    alive: Callable[[], bool],
) -> Latency | None:
    """Produce at `rate` for `seconds`; return the latency of those contracts."""
    events = pool[: int(rate * seconds)]
    if not events:
        return None
    before = len(watcher.outputs.first_seen)
    topic = Catalog(settings).assignments.name
    stamps = produce_paced(settings, topic, events, "assignment_id", rate)
    watcher.wait_for(before + len(events), stall=STALL_SECONDS, alive=alive)
    issued = issued_by_triple(watcher.outputs)
    return latency("paced", _stamped(events, stamps), issued, offered_rate=rate)


def _stamped(events: list[dict[str, Any]], stamps: list[int]) -> dict[Triple, int]:
    return {triple(e): s for e, s in zip(events, stamps, strict=True)}


def measure_recovery(
    settings: Settings,
    root: Path,
    work: Workload,
    keys: int,
    empty_ready: float | None,
) -> Recovery:
    """Fill the registry changelog with `keys` entries; time a worker's recovery."""
    catalog = Catalog(settings)
    entry = registry_entry(work, settings.artifact_dir)
    size = write_registry(settings, catalog.registry_changelog.name, entry, keys)
    timeout = 180.0 + keys / RECOVERY_KEYS_PER_SECOND
    with running_workers(settings, root, 1) as [child]:
        started = time.monotonic()
        ready = wait_for_line(child, READY_LINE, started, timeout)
        log = child.log_path.read_text(errors="replace")
        recovered = any(line in log for line in RECOVERED_LINES)
        rss = peak_rss_mb(child)
    note = "" if recovered else "the worker's log shows no changelog recovery"
    return Recovery(
        keys=keys,
        ready_seconds=ready,
        empty_ready_seconds=empty_ready,
        peak_rss_mb=rss,
        changelog_mb=size,
        note=note,
    )
