"""The aggregation policy through the real broker, Redis and a worker."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contracts.keys import contract_id, contract_key
from contracts.models import AuditEvent, AuditType
from streams.admin import create_topics
from streams.codec import to_json
from streams.topics import Catalog
from tests.factories import TEMPLATE, event
from tests.integration.conftest import SettingsFactory
from tests.integration.harness import latest_by_key, produce, read_all, workers

WINDOW_SECONDS = 2.0
GRACE_SECONDS = 1.0


def accepted(assignment_id: str, collaborator_id: str, at: datetime) -> dict[str, Any]:
    return to_json(
        event(
            assignment_id=assignment_id,
            collaborator_id=collaborator_id,
            occurred_at=at,
            event_id=f"evt-{assignment_id}",
        )
    )


def id_of(*assignment_ids: str) -> str:
    return contract_id(contract_key("org-a", "prj-1", assignment_ids, TEMPLATE))


def next_window_start(after: datetime) -> datetime:
    """The first window start at or after `after`, windows aligned on the epoch."""
    seconds = math.ceil(after.timestamp() / WINDOW_SECONDS) * WINDOW_SECONDS
    return datetime.fromtimestamp(seconds, UTC)


def test_acceptances_of_one_collaborator_in_one_window_make_one_contract(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    settings = settings_factory(
        aggregation_window_seconds=WINDOW_SECONDS,
        aggregation_grace_seconds=GRACE_SECONDS,
    )
    catalog = Catalog(settings)
    create_topics(settings, catalog)
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
            accepted("asg-3", "col-1", start + timedelta(seconds=1.5)),
        ]
        produce(settings, catalog.assignments, [*batch, batch[0]])
        bundle, alone = id_of("asg-1", "asg-2", "asg-3"), id_of("asg-4")
        contracts = latest_by_key(
            read_all(
                settings,
                catalog.contracts,
                until=lambda records: {bundle, alone} <= {r.key for r in records},
                timeout=30,
            )
        )
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
