"""The benchmark's arithmetic, its workload and how it shows its figures."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from contracts.generation import RegistryEntry
from contracts.keys import contract_id
from contracts.models import Document
from streams.bench_baselines import Progress, read_progress
from streams.bench_load import issued_entry, registry_records, triple, workload
from streams.bench_procs import cpu_seconds, wait_for_line
from streams.bench_report import (
    BenchResult,
    Latency,
    Recovery,
    Throughput,
    latency,
    percentile,
    profile_shares,
    progress_rate,
    rate_between,
    ratio,
    render_table,
    steady_rate,
    summary,
    to_json,
)
from streams.devstack import ChildProcess

DOCUMENT = Document(
    uri="file:///artifacts/ab/abcd.pdf",
    sha256="ab" * 32,
    media_type="application/pdf",
    size=4321,
)


def test_a_rate_counts_intervals_between_the_first_and_last_record() -> None:
    assert rate_between([1_000, 1_500, 2_000, 3_000]) == pytest.approx(1.5)


def test_a_rate_does_not_depend_on_the_order_of_the_timestamps() -> None:
    assert rate_between([3_000, 1_000, 2_000]) == rate_between([1_000, 2_000, 3_000])


@pytest.mark.parametrize("stamps", [[], [5], [7, 7, 7]])
def test_no_rate_comes_from_fewer_than_two_records_or_no_span(
    stamps: list[int],
) -> None:
    assert rate_between(stamps) is None


def test_the_steady_rate_leaves_out_a_slow_start_and_a_slow_end() -> None:
    # A second-long pause at each end, ten records a second in between.
    stamps = [0, *range(1_000, 2_000, 100), 3_000]

    assert rate_between(stamps) == pytest.approx(11 / 3)
    assert steady_rate(stamps, trim=0.1) == pytest.approx(10.0)


def test_a_progress_rate_counts_every_event_from_first_consumed_to_last_done() -> None:
    assert progress_rate(500, 10.0, 12.0) == pytest.approx(250.0)


@pytest.mark.parametrize(
    ("count", "first", "last"), [(0, 1.0, 2.0), (5, None, 2.0), (5, 2.0, 2.0)]
)
def test_no_progress_rate_without_events_or_time(
    count: int, first: float | None, last: float | None
) -> None:
    assert progress_rate(count, first, last) is None


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], 0), ([1.0], 101)])
def test_a_percentile_of_nothing_or_out_of_range_is_refused(
    values: list[float], q: float
) -> None:
    with pytest.raises(ValueError):
        percentile(values, q)


def test_latency_pairs_each_contract_with_its_acceptance() -> None:
    accepted = {"a": 1_000, "b": 2_000, "c": 3_000}
    issued = {"a": 1_010, "b": 2_030, "z": 9_999}

    measured = latency("paced", accepted, issued, offered_rate=40.0)

    assert measured == Latency(
        label="paced",
        count=2,
        p50_ms=10.0,
        p99_ms=30.0,
        max_ms=30.0,
        offered_rate=40.0,
    )


def test_no_latency_when_no_contract_matches_an_acceptance() -> None:
    assert latency("backlog", {"a": 1}, {"b": 2}) is None


def test_a_ratio_needs_both_figures() -> None:
    assert ratio(50.0, 200.0) == 0.25
    assert ratio(None, 200.0) is None
    assert ratio(50.0, 0.0) is None


def test_profile_shares_count_a_function_once_per_sample_however_deep() -> None:
    collapsed = [
        "main (w.py:1);step (g.py:5);render (r.py:9);render (r.py:9) 6",
        "main (w.py:1);step (g.py:5);encode (c.py:3) 3",
        "main (w.py:1);poll (k.py:2) 1",
        "not a profile line",
    ]

    shares = dict(profile_shares(collapsed))

    assert shares["main (w.py)"] == pytest.approx(1.0)
    assert shares["step (g.py)"] == pytest.approx(0.9)
    assert shares["render (r.py)"] == pytest.approx(0.6)
    assert shares["encode (c.py)"] == pytest.approx(0.3)


def test_a_table_right_aligns_columns_of_numbers_only() -> None:
    table = render_table(
        ["run", "rate"],
        [["short", "5.0 events/s"], ["much longer", "1,250.5 events/s"]],
    )

    assert table.splitlines() == [
        "  run                      rate",
        "  -----------  ----------------",
        "  short            5.0 events/s",
        "  much longer  1,250.5 events/s",
    ]


def _result() -> BenchResult:
    return BenchResult(
        machine={"cpus": "2", "memory": "24 GiB", "python": "3.11.7"},
        assignments=1000,
        pipeline=Throughput(
            "pipeline", "contracts/s", 1000, rate=50.0, steady_rate=52.0
        ),
        latencies=[Latency("backlog", 1000, 9000.0, 19000.0, 19500.0)],
        baselines=[
            Throughput("confluent loop", "events/s", 1000, rate=1000.0),
            Throughput("quix", "events/s", note="not measured: stalled at 0/1,000"),
        ],
        recovery=Recovery(1000, 12.5, 6.0, 180.0, 1.4),
    )


def test_the_summary_shows_each_figure_and_the_ratio_to_each_baseline() -> None:
    text = summary(_result())

    assert "50.0 contracts/s" in text
    assert "9,000 ms / 19,000 ms / 19,500 ms" in text
    assert "0.050x" in text
    assert "not measured: stalled at 0/1,000" in text
    assert "12.5 s" in text


def test_the_json_carries_the_figures_and_the_ratios() -> None:
    data = json.loads(json.dumps(to_json(_result())))

    assert data["pipeline"]["rate"] == 50.0
    assert data["ratios"] == {"confluent loop": 0.05, "quix": None}
    assert data["recovery"]["keys"] == 1000


def test_the_workload_accepts_each_assignment_once_and_splits_backlog_from_paced() -> (
    None
):
    work = workload(40, paced=10, seed=3)

    events = work.bulk + work.paced
    assert (len(work.bulk), len(work.paced)) == (40, 10)
    assert {e["event_type"] for e in events} == {"AssignmentAccepted"}
    assert {e["source"] for e in events} == {"backend"}
    assert len({triple(e) for e in events}) == 50


def test_registry_records_are_distinct_entries_shaped_like_the_generators() -> None:
    event = next(e for e in workload(20, seed=3).bulk if "parties" in e)
    entry = issued_entry(event, DOCUMENT)

    records = list(registry_records(entry, 3))

    assert len({key for key, _ in records}) == 3
    for key, value in records:
        stored = RegistryEntry.model_validate_json(value)
        assert stored.contract_key == key.decode()
        assert stored.contract is not None
        assert stored.contract.contract_id == contract_id(key.decode())
        assert stored.contract.document == DOCUMENT


def test_a_baseline_reports_its_progress_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    progress = Progress(path, expect=3)

    assert read_progress(path) is None
    progress.begin()
    for _ in range(3):
        progress.tick()

    written = read_progress(path)
    assert written is not None
    assert written["count"] == 3
    assert written["first"] <= written["last"]


def test_cpu_seconds_reads_what_a_busy_child_has_used(tmp_path: Path) -> None:
    burn = "import time\nend = time.process_time() + 0.3\n" + (
        "while time.process_time() < end: pass\nprint('burnt', flush=True)\n"
        "time.sleep(30)\n"
    )
    child = ChildProcess("burn", [sys.executable, "-c", burn], tmp_path / "burn.log")
    child.start()
    try:
        wait_for_line(child, "burnt", time.monotonic())
        used = cpu_seconds(child)
    finally:
        child.kill()

    assert used is not None
    assert 0.3 <= used < 5
