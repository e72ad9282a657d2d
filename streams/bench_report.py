"""What `contractflow bench` measured, and how it is shown: pure, no I/O.

Rates come from Kafka record timestamps (milliseconds) or from a baseline's
own clock; latencies are differences of record timestamps. Everything here
takes plain numbers, so the arithmetic and the formatting are tested without
a broker.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# The steady rate leaves out this share of records at each end: the first
# ones carry the warm-up (caches, JIT-less imports, first batches), the last
# ones the drain of a partition or two that finish late.
STEADY_TRIM = 0.1


@dataclass(frozen=True)
class Throughput:
    """How fast one run turned its input into outputs, or why it was not measured."""

    name: str
    unit: str
    count: int = 0
    rate: float | None = None
    steady_rate: float | None = None
    peak_rss_mb: float | None = None
    ready_seconds: float | None = None
    # Worker CPU time (all its threads) per output while the backlog ran.
    cpu_ms_per_item: float | None = None
    note: str = ""

    @property
    def measured(self) -> bool:
        """Tell whether the run produced a rate at all."""
        return self.rate is not None


@dataclass(frozen=True)
class Latency:
    """Acceptance-to-contract latency over `count` contracts, in milliseconds."""

    label: str
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    offered_rate: float | None = None


@dataclass(frozen=True)
class Recovery:
    """How long a worker took to be ready with a registry of `keys` entries."""

    keys: int
    ready_seconds: float | None
    empty_ready_seconds: float | None
    peak_rss_mb: float | None
    changelog_mb: float
    note: str = ""


@dataclass
class BenchResult:
    """Everything one `contractflow bench` invocation measured."""

    machine: dict[str, str]
    assignments: int
    pipeline: Throughput | None = None
    latencies: list[Latency] = field(default_factory=list)
    baselines: list[Throughput] = field(default_factory=list)
    scale: list[Throughput] = field(default_factory=list)
    recovery: Recovery | None = None
    profile: list[tuple[str, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def rate_between(timestamps_ms: Iterable[int]) -> float | None:
    """Return records per second from the first to the last timestamp.

    The first record opens the interval, so n records over the span count as
    n - 1 intervals. None when there are fewer than two records or no span.
    """
    stamps = list(timestamps_ms)
    if len(stamps) < 2:
        return None
    span = (max(stamps) - min(stamps)) / 1000
    if span <= 0:
        return None
    return (len(stamps) - 1) / span


def steady_rate(
    timestamps_ms: Iterable[int], trim: float = STEADY_TRIM
) -> float | None:
    """Return the rate over the middle of the run, `trim` left out at each end."""
    stamps = sorted(timestamps_ms)
    cut = int(len(stamps) * trim)
    return rate_between(stamps[cut : len(stamps) - cut])


def progress_rate(count: int, first: float | None, last: float | None) -> float | None:
    """Return events per second from the first consumed to the last processed.

    `first` is taken before the first event is processed, so all `count`
    events fall within the interval.
    """
    if count <= 0 or first is None or last is None or last <= first:
        return None
    return count / (last - first)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the nearest-rank `q`-th percentile (0 < q <= 100) of `values`."""
    if not values:
        raise ValueError("no values")
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} is outside (0, 100]")
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return float(ordered[rank - 1])


def latency(
    label: str,
    accepted_ms: dict[Any, int],
    issued_ms: dict[Any, int],
    offered_rate: float | None = None,
) -> Latency | None:
    """Return the latency of every key issued that was also accepted here."""
    gaps = [issued_ms[k] - accepted_ms[k] for k in issued_ms if k in accepted_ms]
    if not gaps:
        return None
    return Latency(
        label=label,
        count=len(gaps),
        p50_ms=percentile(gaps, 50),
        p99_ms=percentile(gaps, 99),
        max_ms=float(max(gaps)),
        offered_rate=offered_rate,
    )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator, or None when either is missing or zero."""
    if not numerator or not denominator:
        return None
    return numerator / denominator


def profile_shares(
    collapsed: Iterable[str], *, thread: str | None = None, top: int = 12
) -> list[tuple[str, float]]:
    """Return the functions holding the most samples, inclusive, as shares.

    `collapsed` holds py-spy's raw lines (`frame;frame;frame count`). A
    function counts once per sample however deep it recurses. With `thread`,
    only stacks whose first frame contains it count.
    """
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if thread is not None and thread not in frames[0]:
            continue
        count = int(count_text)
        total += count
        for name in {_function_of(frame) for frame in frames}:
            inclusive[name] += count
    if not total:
        return []
    return [(name, n / total) for name, n in inclusive.most_common(top)]


def _function_of(frame: str) -> str:
    """Return `function (module file)` from a py-spy frame, without its line."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path.rsplit('/', 1)[-1]})" if path else name


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return rows under headers, columns padded, columns of numbers right-aligned."""
    columns = [(header, *(row[n] for row in rows)) for n, header in enumerate(headers)]
    widths = [max(len(cell) for cell in column) for column in columns]
    right = [_numeric_column(column[1:]) for column in columns]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if flush else cell.ljust(width)
            for cell, width, flush in zip(cells, widths, right, strict=True)
        ]
        return ("  " + "  ".join(padded)).rstrip()

    rule = "  " + "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def _numeric_column(cells: Sequence[str]) -> bool:
    """Tell whether every filled cell starts with a number ("-" is empty)."""
    filled = [cell for cell in cells if cell not in ("", "-")]
    return bool(filled) and all(_starts_with_number(cell) for cell in filled)


def _starts_with_number(cell: str) -> bool:
    head = cell.split(" ", 1)[0].rstrip("x%")
    return head.replace(",", "").replace(".", "", 1).isdigit()


def summary(result: BenchResult) -> str:
    """Return the tables `contractflow bench` prints."""
    parts = [_headline(result)]
    if result.pipeline is not None:
        parts.append("pipeline (one worker)\n" + _pipeline_table(result))
    if result.baselines:
        parts.append("baselines (same broker, same events)\n" + _baseline_table(result))
    if result.scale:
        parts.append("scale-out (one consumer group)\n" + _scale_table(result))
    if result.recovery is not None:
        parts.append("registry recovery\n" + _recovery_table(result.recovery))
    if result.profile:
        parts.append(
            "worker profile (share of busy samples)\n" + _profile_table(result)
        )
    if result.problems:
        parts.append("problems\n" + "\n".join(f"  - {p}" for p in result.problems))
    return "\n\n".join(parts) + "\n"


def _headline(result: BenchResult) -> str:
    machine = result.machine
    return (
        f"contractflow bench: {result.assignments:,} accepted assignments; "
        f"{machine.get('cpus', '?')} CPUs, {machine.get('memory', '?')}, "
        f"Python {machine.get('python', '?')}"
    )


def _pipeline_table(result: BenchResult) -> str:
    run = result.pipeline
    assert run is not None
    rows = [
        ["contracts issued", f"{run.count:,}"],
        ["throughput, first to last contract", _rate(run.rate, run.unit)],
        ["throughput, middle 80 % of contracts", _rate(run.steady_rate, run.unit)],
        ["worker CPU per contract, backlog", _cpu(run.cpu_ms_per_item)],
        ["worker peak RSS", _megabytes(run.peak_rss_mb)],
        ["worker start to ready", _seconds(run.ready_seconds)],
    ]
    for lat in result.latencies:
        offered = f" at {lat.offered_rate:,.0f}/s" if lat.offered_rate else ""
        rows.append(
            [
                f"latency {lat.label}{offered} p50 / p99 / max",
                f"{_ms(lat.p50_ms)} / {_ms(lat.p99_ms)} / {_ms(lat.max_ms)}"
                f"  ({lat.count:,} contracts)",
            ]
        )
    if run.note:
        rows.append(["note", run.note])
    return render_table(["measure", "value"], rows)


def _baseline_table(result: BenchResult) -> str:
    pipeline_rate = result.pipeline.rate if result.pipeline else None
    rows = []
    for run in result.baselines:
        share = ratio(pipeline_rate, run.rate)
        rows.append(
            [
                run.name,
                _rate(run.rate, run.unit) if run.measured else "not measured",
                f"{share:.3f}x" if share is not None else "-",
                _megabytes(run.peak_rss_mb),
                run.note,
            ]
        )
    headers = ["run", "rate", "pipeline / run", "peak RSS", "note"]
    return render_table(headers, rows)


def _scale_table(result: BenchResult) -> str:
    first = result.scale[0].rate if result.scale else None
    rows = []
    for run in result.scale:
        gain = ratio(run.rate, first)
        rows.append(
            [
                run.name,
                f"{run.count:,}",
                _rate(run.rate, run.unit),
                _rate(run.steady_rate, run.unit),
                f"{gain:.2f}x" if gain is not None else "-",
                _megabytes(run.peak_rss_mb),
                run.note,
            ]
        )
    headers = ["workers", "contracts", "rate", "steady", "vs one", "peak RSS", "note"]
    return render_table(headers, rows)


def _recovery_table(recovery: Recovery) -> str:
    rows = [
        ["registry keys", f"{recovery.keys:,}"],
        ["changelog size (values and keys)", _megabytes(recovery.changelog_mb)],
        ["worker start to ready, with the registry", _seconds(recovery.ready_seconds)],
        ["worker start to ready, empty", _seconds(recovery.empty_ready_seconds)],
        ["worker peak RSS", _megabytes(recovery.peak_rss_mb)],
    ]
    if recovery.note:
        rows.append(["note", recovery.note])
    return render_table(["measure", "value"], rows)


def _profile_table(result: BenchResult) -> str:
    rows = [[name, f"{share * 100:.1f} %"] for name, share in result.profile]
    return render_table(["function (inclusive)", "samples"], rows)


def to_json(result: BenchResult) -> dict[str, Any]:
    """Return `result` as a JSON-safe dict, with the pipeline/baseline ratios."""
    data = asdict(result)
    pipeline_rate = result.pipeline.rate if result.pipeline else None
    data["ratios"] = {
        run.name: ratio(pipeline_rate, run.rate) for run in result.baselines
    }
    data["profile"] = [
        {"function": name, "share": share} for name, share in result.profile
    ]
    return data


def _rate(value: float | None, unit: str) -> str:
    return f"{value:,.1f} {unit}" if value is not None else "-"


def _megabytes(value: float | None) -> str:
    return f"{value:,.0f} MiB" if value is not None else "-"


def _cpu(value: float | None) -> str:
    return f"{value:,.2f} ms" if value is not None else "-"


def _seconds(value: float | None) -> str:
    return f"{value:,.1f} s" if value is not None else "-"


def _ms(value: float) -> str:
    return f"{value:,.0f} ms"
