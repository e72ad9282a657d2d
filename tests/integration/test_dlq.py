"""`contractflow dlq list` shows dead letters; `dlq redrive` sends them back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from contracts.models import Contract, DeadLetter
from streams.settings import Settings
from streams.topics import Catalog
from tests.integration.conftest import CliRunner
from tests.integration.harness import Read, produce, read_all, workers
from tests.integration.test_retry import (
    acceptance,
    produce_parties,
    values,
    without_parties,
)


def letters_count(count: int) -> Callable[[list[Read]], bool]:
    return lambda records: len(values(records, DeadLetter)) >= count


def test_a_redriven_job_is_issued_once_its_parties_arrived_and_only_once(
    settings: Settings, catalog: Catalog, tmp_path: Path, run_cli: CliRunner
) -> None:
    produce(
        settings,
        catalog.assignments,
        [
            without_parties(),
            acceptance(assignment_id="asg-bad", contract_template_version="nope@1"),
        ],
    )

    with workers(settings, tmp_path):
        letters = read_all(settings, catalog.dlq, until=letters_count(2))
        listed = run_cli(settings, "dlq", "list")
        missing = run_cli(settings, "dlq", "list", "--reason", "MISSING_PARTY")
        elsewhere = run_cli(settings, "dlq", "list", "--org", "org-zz")
        unchosen = run_cli(settings, "dlq", "redrive")

        produce_parties(settings, catalog)
        first = run_cli(settings, "dlq", "redrive", "--reason", "MISSING_PARTY")
        read_all(settings, catalog.contracts, until=lambda r: len(r) >= 1)
        second = run_cli(settings, "dlq", "redrive", "--reason", "MISSING_PARTY")
        contracts = read_all(settings, catalog.contracts, until=lambda r: len(r) >= 2)

        bad = next(r for r in letters if r.key == "asg-bad")
        event = run_cli(
            settings, "dlq", "redrive", "--offset", f"{bad.partition}:{bad.offset}"
        )
        after = read_all(settings, catalog.dlq, until=letters_count(3))

    assert listed.returncode == 0, listed.stderr
    assert "MISSING_PARTY" in listed.stdout and "UNKNOWN_TEMPLATE" in listed.stdout
    assert listed.stdout.splitlines()[0].split()[:3] == [
        "offset",
        "reason_code",
        "source",
    ]
    assert "UNKNOWN_TEMPLATE" not in missing.stdout
    assert "1 dead letters" in missing.stdout
    assert "0 dead letters" in elsewhere.stdout
    assert unchosen.returncode == 2 and "--reason" in unchosen.stderr

    assert first.returncode == 0 and second.returncode == 0, first.stderr
    assert len({c.contract_id for c in values(contracts, Contract)}) == 1
    assert len(values(contracts, Contract)) == 2, "the second redrive is a duplicate"

    assert event.returncode == 0, event.stderr
    again = [d for d in values(after, DeadLetter) if d.key == "asg-bad"]
    assert len(again) == 2
    assert again[0].raw == again[1].raw
    assert again[1].source_topic == catalog.assignments.name
