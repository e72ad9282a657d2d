"""The missing-contract detector on real workers: late, once, and resolved."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts.models import AuditEvent, AuditType, Notification, NotificationCode
from streams.admin import create_topics
from streams.settings import Settings
from streams.topics import Catalog
from tests.integration.conftest import SettingsFactory
from tests.integration.harness import produce, read_all, workers
from tests.integration.test_lifecycle import as_json, command, solo_id, wait_for

GRACE = 8.0


def notes(settings: Settings, catalog: Catalog, code: NotificationCode) -> list[str]:
    records = read_all(settings, catalog.notifications, timeout=0, idle=1)
    return [
        r.value.assignment_id
        for r in records
        if isinstance(r.value, Notification) and r.value.code is code
    ]


def test_a_late_contract_is_warned_about_once_across_restarts_then_resolved(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    settings = settings_factory(missing_contract_grace_seconds=GRACE)
    catalog = Catalog(settings)
    create_topics(settings, catalog)
    produce(
        settings,
        catalog.assignments,
        [
            # Waits for a GenerateContract that comes only after the warning.
            as_json(assignment_id="asg-late", bundle_id="b-late"),
            # Issued at once: its deadline is settled before it falls due.
            as_json(assignment_id="asg-ok", at=1),
        ],
    )
    started = datetime.now(UTC)

    with workers(settings, tmp_path / "first") as [first]:
        wait_for(settings, catalog.contracts, lambda c: solo_id("asg-ok") in c)
        early = notes(settings, catalog, NotificationCode.EXPECTED_WARNING)
        first.kill()
    assert early == [], "warned before the grace period ran out"

    # Two workers after a crash: the deadline survived in Redis and one of
    # them claims it.
    with workers(settings, tmp_path / "second", count=2):
        read_all(
            settings,
            catalog.notifications,
            until=lambda r: any(
                isinstance(n.value, Notification)
                and n.value.code is NotificationCode.EXPECTED_WARNING
                for n in r
            ),
            timeout=90,
        )
        # Long enough for every worker to have looked at the deadline again.
        time.sleep(GRACE / 2)
        produce(
            settings,
            catalog.commands,
            [command("cmd-late", "GenerateContract", assignment_ids=["asg-late"])],
        )
        read_all(
            settings,
            catalog.notifications,
            until=lambda r: any(
                isinstance(n.value, Notification)
                and n.value.code is NotificationCode.EXPECTED_RESOLVED
                for n in r
            ),
            timeout=60,
        )

    records = read_all(settings, catalog.notifications, timeout=0, idle=1)
    warnings = [
        r.value for r in records if r.value.code is NotificationCode.EXPECTED_WARNING
    ]
    resolved = notes(settings, catalog, NotificationCode.EXPECTED_RESOLVED)
    audits = [
        r.value
        for r in read_all(settings, catalog.audit, timeout=0, idle=1)
        if isinstance(r.value, AuditEvent)
        and r.value.type is AuditType.EXPECTED_MISSING
    ]
    assert [w.assignment_id for w in warnings] == ["asg-late"]
    assert warnings[0].mission_id and warnings[0].project_id == "prj-1"
    assert warnings[0].occurred_at >= started + timedelta(seconds=GRACE)
    assert [a.assignment_id for a in audits] == ["asg-late"]
    assert resolved == ["asg-late"]
