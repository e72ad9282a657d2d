"""`contractflow demo` end to end: its own stack, one worker, a seeded scenario."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from streams.scenario import generate

SEED = 7
ASSIGNMENTS = 200


def _demo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _row(summary: str, name: str) -> int:
    match = re.search(rf"^\s+{re.escape(name)}\s+(\d+)", summary, re.MULTILINE)
    assert match, f"no {name!r} row in:\n{summary}"
    return int(match.group(1))


def test_the_demo_issues_one_contract_per_accepted_assignment(tmp_path: Path) -> None:
    expected = generate(seed=SEED, assignments=ASSIGNMENTS)

    result = _demo(
        "--assignments", str(ASSIGNMENTS), "--seed", str(SEED),
        "--dir", str(tmp_path / "demo"),
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert _row(result.stdout, "contracts issued") == len(expected.expected_contracts)
    assert _row(result.stdout, "PDFs stored") == len(expected.expected_contracts)
    assert _row(result.stdout, "refused (frontend)") == len(expected.frontend)
    assert _row(result.stdout, "events in") == expected.event_count
    assert _row(result.stdout, "dead letters") == 0
    assert "every accepted assignment has exactly one contract" in result.stdout
    assert f"/{len(expected.expected_contracts)} contracts" in result.stderr


def test_the_demo_refuses_to_wipe_a_directory_that_is_not_its_own(
    tmp_path: Path,
) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")

    result = _demo("--assignments", "5", "--dir", str(tmp_path), timeout=60)

    assert result.returncode == 2
    assert "not a demo directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert precious.read_text() == "keep me"
