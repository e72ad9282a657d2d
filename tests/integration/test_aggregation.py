"""The aggregation policy through the real broker, Redis and a worker."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contracts.keys import contract_id, contract_key
from contracts.models import AuditEvent, AuditType
from streams.admin import create_topics
from streams.codec import to_json
from streams.settings import Settings
from streams.topics import Catalog
from tests.factories import TEMPLATE, event
from tests.integration.conftest import SettingsFactory
from tests.integration.harness import (
    Read,
    latest_by_key,
    produce,
    read_all,
    workers,
)

WINDOW_SECONDS = 2.0
GRACE_SECONDS = 1.0


def accepted(
    assignment_id: str,
    collaborator_id: str,
    at: datetime,
    event_type: str = "AssignmentAccepted",
) -> dict[str, Any]:
    return to_json(
        event(
            event_type,
            assignment_id=assignment_id,
            collaborator_id=collaborator_id,
            occurred_at=at,
            event_id=f"evt-{event_type}-{assignment_id}",
        )
    )


def canceled(assignment_id: str, collaborator_id: str, at: datetime) -> dict[str, Any]:
    return accepted(assignment_id, collaborator_id, at, "AssignmentCanceled")


def policy_settings(settings_factory: SettingsFactory, grace: float) -> Settings:
    settings = settings_factory(
        aggregation_window_seconds=WINDOW_SECONDS, aggregation_grace_seconds=grace
    )
    create_topics(settings, Catalog(settings))
    return settings


def id_of(*assignment_ids: str) -> str:
    return contract_id(contract_key("org-a", "prj-1", assignment_ids, TEMPLATE))


def next_window_start(after: datetime) -> datetime:
    """The first window start at or after `after`, windows aligned on the epoch."""
    seconds = math.ceil(after.timestamp() / WINDOW_SECONDS) * WINDOW_SECONDS
    return datetime.fromtimestamp(seconds, UTC)


def test_acceptances_of_one_collaborator_in_one_window_make_one_contract(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    settings = policy_settings(settings_factory, GRACE_SECONDS)
    catalog = Catalog(settings)
    # Alone in its window and followed by nothing: only the wall clock closes it.
    produce(
        settings,
        catalog.assignments,
        [accepted("asg-q", "col-2", datetime.now(UTC))],
    )
    quiet = id_of("asg-q")

    with workers(settings, tmp_path):
        read_all(
            settings,
            catalog.contracts,
            until=lambda records: quiet in {r.key for r in records},
            timeout=60,
        )

        # A window that opens a little later, so that every acceptance below
        # reaches the worker before the wall clock closes it.
        start = next_window_start(datetime.now(UTC) + timedelta(seconds=2))
        batch = [
            accepted("asg-2", "col-1", start + timedelta(seconds=0.5)),
            accepted("asg-1", "col-1", start + timedelta(seconds=0.1)),
            accepted("asg-4", "col-2", start + timedelta(seconds=0.2)),
            accepted("asg-5", "col-1", start + timedelta(seconds=0.3)),
            accepted("asg-3", "col-1", start + timedelta(seconds=1.5)),
        ]
        # Delivered twice, and one of them cancelled before the window closes.
        cancel = canceled("asg-5", "col-1", start + timedelta(seconds=0.8))
        produce(settings, catalog.assignments, [*batch, batch[0], cancel])
        bundle, alone = id_of("asg-1", "asg-2", "asg-3"), id_of("asg-4")
        contracts = latest_by_key(
            read_all(
                settings,
                catalog.contracts,
                until=lambda records: {bundle, alone} <= {r.key for r in records},
                timeout=30,
            )
        )
        produce(
            settings,
            catalog.commands,
            [generate_command("cmd-1", ["asg-1"])],
        )
        letters = read_all(settings, catalog.dlq, until=lambda r: len(r) >= 1)
        # Give a contract of its own to a bundled assignment the time to appear.
        everything = read_all(settings, catalog.contracts, timeout=3, idle=3)
        audits = read_all(settings, catalog.audit, timeout=3, idle=2)

    assert contracts[bundle].assignment_ids == ("asg-1", "asg-2", "asg-3")
    assert contracts[alone].assignment_ids == ("asg-4",)
    assert contracts[quiet].assignment_ids == ("asg-q",)
    assert {r.key for r in everything} == {quiet, bundle, alone}
    generated = [
        a.assignment_id
        for a in (r.value for r in audits)
        if isinstance(a, AuditEvent)
        and a.type == AuditType.GENERATED
        and a.contract_id == bundle
    ]
    assert sorted(generated) == ["asg-1", "asg-2", "asg-3"]
    [letter] = [r.value for r in letters]
    assert letter.reason_code == "REFUSED" and "aggregation" in letter.reason


def test_an_open_window_survives_a_worker_restart(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    # The grace keeps the window open while one worker stops and the next
    # starts; it counts from acceptances sent once the first worker is up.
    settings = policy_settings(settings_factory, grace=16.0)
    catalog = Catalog(settings)
    produce(
        settings,
        catalog.assignments,
        [accepted("asg-w", "col-9", datetime.now(UTC))],
    )
    bundle = id_of("asg-1", "asg-2")

    with workers(settings, tmp_path / "first"):
        held_in_window(settings, catalog, "asg-w")
        now = datetime.now(UTC)
        produce(
            settings,
            catalog.assignments,
            [accepted("asg-1", "col-1", now), accepted("asg-2", "col-1", now)],
        )
        held_in_window(settings, catalog, "asg-1", "asg-2")
        # Past Faust's commit interval (2.8 s), so the restart recovers the
        # window from the changelog rather than from a replay of its input.
        time.sleep(4)
        before = read_all(settings, catalog.contracts, timeout=2, idle=1)

    with workers(settings, tmp_path / "second"):
        contracts = latest_by_key(
            read_all(
                settings,
                catalog.contracts,
                until=lambda records: bundle in {r.key for r in records},
                timeout=60,
            )
        )

    assert before == []
    assert contracts[bundle].assignment_ids == ("asg-1", "asg-2")
    assert id_of("asg-1") not in contracts and id_of("asg-2") not in contracts


def held_in_window(settings: Settings, catalog: Catalog, *assignment_ids: str) -> None:
    """Wait until one open window of the policy's table holds every id."""

    def holds(records: list[Read]) -> bool:
        # The table keeps its records as JSON, which reads back as a dict.
        texts = (json.dumps(r.value) for r in records)
        return any(all(a in text for a in assignment_ids) for text in texts)

    records = read_all(settings, catalog.windows_changelog, until=holds, timeout=60)
    assert holds(records), f"{assignment_ids} never reached an open window"


def generate_command(command_id: str, assignment_ids: list[str]) -> dict[str, Any]:
    return {
        "command_id": command_id,
        "command_type": "GenerateContract",
        "issued_at": datetime.now(UTC).isoformat(),
        "org_id": "org-a",
        "project_id": "prj-1",
        "assignment_ids": assignment_ids,
    }
