"""The HTTP API of a real worker: timeline, contract and metrics over the wire."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from prometheus_client.parser import text_string_to_metric_families

from contracts.models import Contract
from streams.admin import create_topics
from streams.auth import READ_ROLE, mint_token
from streams.codec import to_json
from streams.topics import Catalog
from tests.factories import T0, event
from tests.integration.conftest import CliRunner, SettingsFactory
from tests.integration.harness import produce, read_all, workers

SECRET = "an-integration-secret-of-at-least-32-bytes"
MISSION_PATH = "/v1/orgs/{org}/projects/prj-1/missions/{mission}/timeline"
# The worker's web server starts with the app; the first answer can lag the
# first contract by a moment on a loaded machine.
WEB_WAIT_SECONDS = 30.0


def fact(event_type: str, minutes: int) -> dict[str, Any]:
    return {
        "event_id": f"fact-{event_type}",
        "event_type": event_type,
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "org_id": "org-a",
        "project_id": "prj-1",
        "mission_id": "mis-1",
        "assignment_id": "asg-1",
        "amount": {"amount": "9000.00", "currency": "EUR"},
    }


def token(
    org_id: str = "org-a",
    roles: list[str] | None = None,
    *,
    project_id: str = "prj-1",
    secret: str = SECRET,
    ttl_seconds: float = 300,
) -> str:
    return mint_token(
        secret,
        sub="test",
        org_id=org_id,
        project_ids=[project_id],
        roles=[READ_ROLE] if roles is None else roles,
        ttl_seconds=ttl_seconds,
    )


def get(port: int, path: str, bearer: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if bearer is not None:
        request.add_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for_web(port: int) -> None:
    deadline = time.monotonic() + WEB_WAIT_SECONDS
    while True:
        try:
            get(port, "/metrics")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_the_api_serves_a_missions_timeline_only_to_its_tenants_readers(
    settings_factory: SettingsFactory, tmp_path: Path, run_cli: CliRunner
) -> None:
    settings = settings_factory(jwt_secret=SECRET)
    catalog = Catalog(settings)
    create_topics(settings, catalog)
    produce(settings, catalog.assignments, [to_json(event("AssignmentAccepted"))])
    produce(settings, catalog.executions, [fact("ExecutionStarted", 60)])
    produce(settings, catalog.invoices, [fact("InvoiceIssued", 120)])

    with workers(settings, tmp_path) as [worker]:
        read_all(settings, catalog.contracts, until=lambda r: len(r) >= 1)
        port = int((worker.env or {})["CONTRACTFLOW_WEB_PORT"])
        wait_for_web(port)
        mission = MISSION_PATH.format(org="org-a", mission="mis-1")
        status, body = get(port, mission, token())
        unknown = get(port, MISSION_PATH.format(org="org-a", mission="mis-9"), token())
        other_org = get(port, mission, token(org_id="org-b"))
        other_project = get(port, mission, token(project_id="prj-2"))
        anonymous = get(port, mission)
        forged = get(port, mission, token(secret="another-secret-of-at-least-32-bytes"))
        expired = get(port, mission, token(ttl_seconds=-60))
        no_role = get(port, mission, token(roles=["contracts:write"]))
        metrics = get(port, "/metrics")[1].decode()
        contract_path = "/v1/orgs/org-a/projects/prj-1/contracts/{}"
        timeline = json.loads(body)
        contract_id = timeline["assignments"][0]["steps"][2]["ref"]
        contract = get(port, contract_path.format(contract_id), token())
        foreign = get(port, contract_path.format(contract_id), token(org_id="org-b"))
        # A reader of prj-2 names prj-1's contract under its own project.
        prj2_contracts = "/v1/orgs/org-a/projects/prj-2/contracts/{}"
        prj2 = token(project_id="prj-2")
        elsewhere = get(port, prj2_contracts.format(contract_id), prj2)
        nowhere = get(port, prj2_contracts.format(uuid4()), prj2)

    assert status == 200
    [row] = timeline["assignments"]
    assert row["assignment_id"] == "asg-1"
    assert {s["step"]: s["status"] for s in row["steps"]} == {
        "Assignment": "done",
        "Acceptance": "done",
        "Contract": "done",
        "Execution": "done",
        "Invoice": "done",
        "Payment": "missing",
    }
    assert row["steps"][3]["ref"] == "fact-ExecutionStarted"

    assert contract[0] == 200
    assert Contract.model_validate(json.loads(contract[1])).contract_id == contract_id

    assert anonymous[0] == forged[0] == expired[0] == 401
    assert json.loads(anonymous[1]) == {"error": "unauthorized"}
    assert anonymous[1] == forged[1] == expired[1]
    assert no_role[0] == 403
    refused = [other_org, other_project, foreign, elsewhere, nowhere]
    assert {code for code, _ in refused} == {unknown[0]} == {404}
    assert {answer for _, answer in refused} == {unknown[1]}
    for leaked in (b"org-a", b"mis-1", contract_id.encode()):
        assert leaked not in unknown[1]

    events_in = {
        sample.labels.get("event_type"): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "contractflow_events_in_total"
    }
    assert events_in["AssignmentAccepted"] >= 1

    printed = run_cli(settings, "timeline", "org-a", "prj-1", "mis-1")
    assert printed.returncode == 0, printed.stderr
    rows = [line.split() for line in printed.stdout.splitlines()]
    issued_at = row["steps"][2]["at"]
    assert ["Contract", "done", issued_at, contract_id] in rows
    assert ["Payment", "missing", "-", "-"] in rows
