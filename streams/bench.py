"""`contractflow bench`: how fast the pipeline issues contracts, and against what.

The benchmark starts its own broker and redis-server on free ports, in a
temporary directory. Each run gets a fresh topic prefix, so runs never read
each other's records. The default mode measures one worker on a backlog of
accepted assignments (throughput, backlog latency, peak memory), then at half
that rate (latency under load), then four baselines on the same events.
`--scale` measures one and two workers, and a worker recovering a large
registry from its changelog. `--profile` samples the worker with py-spy
during the backlog instead of running the baselines.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from contracts.errors import ContractflowError
from streams.admin import create_topics
from streams.bench_load import workload
from streams.bench_pipeline import Profile, measure_pipeline, measure_recovery
from streams.bench_procs import measure_baselines
from streams.bench_report import (
    BenchResult,
    Throughput,
    profile_shares,
    summary,
    to_json,
)
from streams.devstack import EmbeddedBroker, RedisServer, exit_on_sigterm, free_port
from streams.settings import EMBEDDED_TIMINGS, Settings
from streams.topics import Catalog

EXIT_OK = 0
EXIT_PARTIAL = 1  # the benchmark ran, but some figure could not be measured
EXIT_ERROR = 2  # the stack could not run, or the pipeline measured nothing
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class BenchOptions:
    """What `contractflow bench` was asked to do."""

    assignments: int = 50_000
    skip_baselines: bool = False
    json_path: Path | None = None
    scale: bool = False
    registry_keys: int = 1_000_000
    paced_seconds: float = 30.0
    profile_path: Path | None = None
    profile_seconds: float = 30.0
    keep: bool = False
    seed: int = 11


@dataclass(frozen=True)
class Lab:
    """A running broker and redis-server, and the directory the runs write to."""

    settings: Settings
    root: Path

    def fresh(self, label: str) -> Settings:
        """Return settings under a new topic prefix, with its topics created."""
        prefix = f"bench{secrets.token_hex(3)}{label}."
        settings = self.settings.model_copy(update={"topic_prefix": prefix})
        create_topics(settings, Catalog(settings))
        return settings


def run_bench(options: BenchOptions) -> int:
    """Run the benchmark, print its tables, write its JSON; return the exit code."""
    exit_on_sigterm()
    result = BenchResult(machine=machine(), assignments=options.assignments)
    code = EXIT_OK
    try:
        with bench_lab(options.keep) as lab:
            if options.scale:
                _scale_mode(lab, options, result)
            else:
                _default_mode(lab, options, result)
    except ContractflowError as exc:
        result.problems.append(str(exc))
        code = EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    sys.stdout.write(summary(result))
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(to_json(result), indent=2) + "\n")
    if code == EXIT_OK and result.problems:
        code = EXIT_PARTIAL
    return code


def machine() -> dict[str, str]:
    """Return what the figures depend on: cores, memory, Python, platform."""
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cpus": str(os.cpu_count() or "?"),
        "memory": f"{memory / 2**30:.0f} GiB",
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


@contextmanager
def bench_lab(keep: bool) -> Iterator[Lab]:
    """Start a broker and a redis-server on free ports, in a temporary directory."""
    root = Path(tempfile.mkdtemp(prefix="contractflow-bench-"))
    try:
        with ExitStack() as stack:
            logs = root / "logs"
            broker = stack.enter_context(EmbeddedBroker(logs, port=free_port()))
            redis = stack.enter_context(
                RedisServer(root / "redis", port=free_port(), log_dir=logs)
            )
            settings = Settings.model_validate(
                {
                    "broker": broker.bootstrap,
                    "redis_url": redis.url,
                    "artifact_dir": root / "artifacts",
                    "data_dir": root / "data",
                    **EMBEDDED_TIMINGS,
                }
            )
            yield Lab(settings, root)
    finally:
        if keep:
            print(f"bench: logs and data kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def _default_mode(lab: Lab, options: BenchOptions, result: BenchResult) -> None:
    # As many paced acceptances as backlogged ones: enough for the paced phase
    # unless the backlog drains in under twice the paced duration.
    work = workload(options.assignments, paced=options.assignments, seed=options.seed)
    path = options.profile_path
    profile = Profile(path, options.profile_seconds) if path else None
    run = measure_pipeline(
        lab.fresh("p"),
        lab.root,
        work,
        paced_seconds=0.0 if profile else options.paced_seconds,
        profile=profile,
    )
    result.pipeline, result.latencies = run.throughput, run.latencies
    _check_complete(run.throughput, len(work.bulk), result)
    if path is not None:
        result.profile = profile_shares(path.read_text().splitlines())
    elif not options.skip_baselines:
        result.baselines = measure_baselines(lab.fresh("b"), lab.root, work.bulk)
        result.problems += [f"{b.name}: {b.note}" for b in result.baselines if b.note]


def _scale_mode(lab: Lab, options: BenchOptions, result: BenchResult) -> None:
    work = workload(options.assignments, seed=options.seed)
    for workers in (1, 2):
        run = measure_pipeline(
            lab.fresh(f"s{workers}"), lab.root, work, workers=workers
        )
        result.scale.append(replace(run.throughput, name=str(workers)))
        _check_complete(run.throughput, len(work.bulk), result)
    result.recovery = measure_recovery(
        lab.fresh("r"),
        lab.root,
        work,
        options.registry_keys,
        empty_ready=result.scale[0].ready_seconds,
    )


def _check_complete(run: Throughput, expected: int, result: BenchResult) -> None:
    if run.count < expected:
        result.problems.append(
            f"{run.name}: {run.count:,} of {expected:,} contracts issued "
            "before the run stalled; the rate covers those only"
        )
