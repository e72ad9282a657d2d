"""Failed jobs are retried through Redis, then issued or dead-lettered, never lost."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from contracts.lifecycle import apply_event
from contracts.models import (
    AuditEvent,
    AuditType,
    Contract,
    ContractJob,
    DeadLetter,
)
from streams.codec import Codec, to_json
from streams.devstack import ChildProcess, RedisServer
from streams.settings import Settings
from streams.topics import Catalog
from tests.factories import COLLABORATOR, ORGANIZATION, event
from tests.integration.conftest import SettingsFactory
from tests.integration.harness import Read, produce, read_all, workers

# Retries slow enough that a test can act between two attempts, with attempts
# enough that the job is still being retried when it does.
PATIENT = {
    "retry_base_seconds": 0.2,
    "retry_cap_seconds": 1.0,
    "retry_max_attempts": 30,
}


def acceptance(**fields: Any) -> dict[str, Any]:
    return to_json(event("AssignmentAccepted", **fields))


def without_parties(**fields: Any) -> dict[str, Any]:
    return acceptance(parties=None, **fields)


def values(records: list[Read], kind: type) -> list[Any]:
    return [r.value for r in records if isinstance(r.value, kind)]


def attempts(records: list[Read]) -> list[tuple[int, str]]:
    audits = values(records, AuditEvent)
    return sorted(
        (a.attempt, a.outcome) for a in audits if a.type == AuditType.GENERATION_ATTEMPT
    )


def count_attempts(outcome: str, at_least: int) -> Callable[[list[Read]], bool]:
    return lambda records: sum(o == outcome for _, o in attempts(records)) >= at_least


def count_failed_jobs(at_least: int) -> Callable[[list[Read]], bool]:
    return lambda records: (
        sum(a.type == AuditType.GENERATION_FAILED for a in values(records, AuditEvent))
        >= at_least
    )


def produce_parties(settings: Settings, catalog: Catalog) -> None:
    produce(
        settings,
        catalog.organizations,
        [{"org_id": "org-a", **ORGANIZATION.model_dump()}],
    )
    produce(
        settings,
        catalog.collaborators,
        [{"collaborator_id": "col-1", **COLLABORATOR.model_dump()}],
    )


def retry_keys(settings: Settings, catalog: Catalog) -> dict[str, int]:
    """Count what Redis still holds for the app's retries, by key."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        namespace = f"{catalog.app_id}:retry"
        return {
            "parked": client.zcard(f"{namespace}:parked"),
            "processing": client.zcard(f"{namespace}:processing"),
            "payloads": client.hlen(f"{namespace}:payloads"),
        }
    finally:
        client.close()


def assert_consecutive_failures_then_success(seen: list[tuple[int, str]]) -> None:
    numbers = [n for n, _ in seen]
    outcomes = [o for _, o in seen]
    assert numbers == list(range(1, len(seen) + 1)), seen
    assert outcomes[-1] == "success", seen
    assert set(outcomes[:-1]) == {"failed"}, seen
    assert len(seen) >= 3, seen


def assert_backoff_within_bounds(audits: list[AuditEvent], settings: Settings) -> None:
    """Each retry waited a drawn delay under its ceiling, and not less."""
    tried = {a.attempt: a for a in audits if a.type == AuditType.GENERATION_ATTEMPT}
    for number, audit in tried.items():
        if audit.outcome != "failed":
            continue
        ceiling = min(
            settings.retry_cap_seconds,
            settings.retry_base_seconds * 2 ** (number - 1),
        )
        assert 0 <= float(audit.payload["retry_in_seconds"]) <= ceiling, audit
        due = datetime.fromisoformat(audit.payload["retry_at"])
        assert tried[number + 1].occurred_at >= due, (audit, tried[number + 1])


def test_a_job_missing_its_parties_is_retried_until_they_arrive_then_issued_once(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    settings = settings_factory(**PATIENT)
    catalog = _created(settings)
    produce(settings, catalog.assignments, [without_parties()])

    with workers(settings, tmp_path):
        read_all(settings, catalog.audit, until=count_attempts("failed", 2))
        produce_parties(settings, catalog)
        contracts = read_all(settings, catalog.contracts, until=lambda r: len(r) >= 1)
        audits = read_all(settings, catalog.audit, until=count_attempts("success", 1))

    [contract] = {c.contract_id: c for c in values(contracts, Contract)}.values()
    assert contract.parties.organization == ORGANIZATION
    assert_consecutive_failures_then_success(attempts(audits))
    assert_backoff_within_bounds(values(audits, AuditEvent), settings)
    generated = [a for a in values(audits, AuditEvent) if a.type == AuditType.GENERATED]
    assert len(generated) == 1
    assert retry_keys(settings, catalog) == {
        "parked": 0,
        "processing": 0,
        "payloads": 0,
    }


def test_an_artifact_store_that_fails_until_its_directory_can_be_made_is_retried(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    # Root may write anywhere, so a read-only directory would not stop it; a
    # parent that is a regular file stops everyone.
    blocker = tmp_path / "volume"
    blocker.write_text("not a directory yet")
    settings = settings_factory(artifact_dir=blocker / "artifacts", **PATIENT)
    catalog = _created(settings)
    produce(settings, catalog.assignments, [acceptance()])

    with workers(settings, tmp_path):
        failing = read_all(settings, catalog.audit, until=count_attempts("failed", 2))
        blocker.unlink()
        blocker.mkdir()
        contracts = read_all(settings, catalog.contracts, until=lambda r: len(r) >= 1)
        audits = read_all(settings, catalog.audit, until=count_attempts("success", 1))

    failures = [a for a in values(failing, AuditEvent) if a.outcome == "failed"]
    assert all("cannot store artifact" in a.payload["error"] for a in failures)
    [contract] = {c.contract_id: c for c in values(contracts, Contract)}.values()
    assert contract.document.uri.startswith((blocker / "artifacts").as_uri())
    assert_consecutive_failures_then_success(attempts(audits))
    assert_backoff_within_bounds(values(audits, AuditEvent), settings)


def test_a_job_whose_parties_never_arrive_is_dead_lettered_after_the_last_attempt(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    produce(settings, catalog.assignments, [without_parties()])

    with workers(settings, tmp_path):
        letters = read_all(settings, catalog.dlq, until=lambda r: len(r) >= 1)
        audits = read_all(settings, catalog.audit, until=count_failed_jobs(1))
        contracts = read_all(settings, catalog.contracts, timeout=1, idle=1)

    [letter] = values(letters, DeadLetter)
    assert letter.reason_code == "MISSING_PARTY"
    assert letter.attempts == settings.retry_max_attempts == 4
    assert letter.source_topic == catalog.jobs.name
    assert letter.key == letter.contract_key
    job = Codec().decode(letter.raw, ContractJob)
    assert job.attempt == 4
    seen = attempts(audits)
    assert [n for n, _ in seen] == [1, 2, 3, 4]
    assert {o for _, o in seen} == {"failed"}
    failed = [
        a for a in values(audits, AuditEvent) if a.type == AuditType.GENERATION_FAILED
    ]
    assert [(a.attempt, a.outcome) for a in failed] == [(4, "dead_lettered")]
    assert contracts == []
    assert retry_keys(settings, catalog) == {
        "parked": 0,
        "processing": 0,
        "payloads": 0,
    }


def test_a_permanent_error_is_dead_lettered_on_the_first_attempt(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    unknown = "freelance-xx@9"
    # A job naming a template no worker ships, as an older intake could send.
    job = _job(contract_template_version=unknown, assignment_id="asg-job")
    produce(settings, catalog.jobs, [to_json(job)])
    produce(
        settings,
        catalog.assignments,
        [acceptance(assignment_id="asg-event", contract_template_version=unknown)],
    )

    with workers(settings, tmp_path):
        letters = read_all(settings, catalog.dlq, until=lambda r: len(r) >= 2)
        audits = read_all(settings, catalog.audit, until=count_failed_jobs(1))

    by_topic = {d.source_topic: d for d in values(letters, DeadLetter)}
    assert set(by_topic) == {catalog.jobs.name, catalog.assignments.name}
    assert {d.reason_code for d in by_topic.values()} == {"UNKNOWN_TEMPLATE"}
    assert by_topic[catalog.jobs.name].attempts == 1
    assert by_topic[catalog.jobs.name].contract_key == job.contract_key
    assert attempts(audits) == [(1, "failed")]
    [failed] = [
        a for a in values(audits, AuditEvent) if a.type == AuditType.GENERATION_FAILED
    ]
    assert (failed.attempt, failed.assignment_id) == (1, "asg-job")
    assert retry_keys(settings, catalog) == {
        "parked": 0,
        "processing": 0,
        "payloads": 0,
    }


def test_no_job_is_lost_when_redis_stops_and_a_worker_dies(
    settings_factory: SettingsFactory, redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = settings_factory(retry_lease_seconds=4.0)
    catalog = _created(settings)
    early = [acceptance(assignment_id=f"asg-early-{n}") for n in range(8)]
    stranded = [without_parties(assignment_id=f"asg-no-{n}") for n in range(4)]
    issuable = [acceptance(assignment_id=f"asg-ok-{n}") for n in range(4)]

    with workers(settings, tmp_path / "first") as first:
        produce(settings, catalog.assignments, early)
        read_all(settings, catalog.contracts, until=_issued(len(early)))
        _wait_committed(settings, catalog)
        _wait_ready(first, True)
        try:
            redis_server.stop()
            _wait_ready(first, False)
            assert _alive(first[0]), "not ready, yet alive"
            produce(settings, catalog.assignments, stranded)
            _wait_for_log(first, "cannot park job")
            first[0].kill()
        finally:
            redis_server.start()
    leased = _leave_a_claimed_job(settings, catalog)

    with workers(settings, tmp_path / "second") as second:
        produce(settings, catalog.assignments, issuable)
        contracts = read_all(settings, catalog.contracts, until=_issued(13))
        letters = read_all(settings, catalog.dlq, until=_lettered(len(stranded)))
        _wait_ready(second, True)

    issued = {c.assignment_ids[0] for c in values(contracts, Contract)}
    letters_by_key = {d.key: d for d in values(letters, DeadLetter)}
    expected = {a["assignment_id"] for a in [*early, *issuable]}
    assert issued == {*expected, leased}
    assert {d.reason_code for d in letters_by_key.values()} == {"MISSING_PARTY"}
    dead = [Codec().decode(d.raw, ContractJob) for d in letters_by_key.values()]
    assert sorted(j.assignment_ids[0] for j in dead) == [
        a["assignment_id"] for a in stranded
    ]
    assert retry_keys(settings, catalog) == {
        "parked": 0,
        "processing": 0,
        "payloads": 0,
    }


def _created(settings: Settings) -> Catalog:
    from streams.admin import create_topics

    catalog = Catalog(settings)
    create_topics(settings, catalog)
    return catalog


def _job(**fields: Any) -> ContractJob:
    now = datetime.now(UTC)
    decision = apply_event(
        None,
        event("AssignmentAccepted", **fields),
        known_templates={fields.get("contract_template_version", "freelance-fr@1")},
        now=now,
    )
    [job] = decision.outcome.jobs
    return job


def _issued(count: int) -> Callable[[list[Read]], bool]:
    return lambda records: (
        len({c.contract_id for c in values(records, Contract)}) >= count
    )


def _lettered(count: int) -> Callable[[list[Read]], bool]:
    # A replayed job may be dead-lettered twice under one key: count keys.
    return lambda records: len({d.key for d in values(records, DeadLetter)}) >= count


def _leave_a_claimed_job(settings: Settings, catalog: Catalog) -> str:
    """Leave Redis as a worker that died right after claiming a job leaves it."""
    job = _job(assignment_id="asg-leased").model_copy(update={"attempt": 2})
    namespace = f"{catalog.app_id}:retry"
    job_id = f"{job.contract_key}:{job.attempt}"
    client = redis.Redis.from_url(settings.redis_url)
    try:
        client.hset(f"{namespace}:payloads", job_id, Codec().encode(job))
        lease_ends = time.time() + settings.retry_lease_seconds
        client.zadd(f"{namespace}:processing", {job_id: lease_ends})
    finally:
        client.close()
    return job.assignment_ids[0]


def _ready(child: ChildProcess) -> bool | None:
    """Ask a worker's /readyz; None while its web server does not answer."""
    port = (child.env or {})["CONTRACTFLOW_WEB_PORT"]
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/readyz", timeout=2
        ) as reply:
            return bool(json.load(reply)["ready"])
    except urllib.error.HTTPError as error:
        if error.code == 503:
            return False
        raise
    except OSError:
        return None


def _wait_committed(settings: Settings, catalog: Catalog, timeout: float = 30) -> None:
    """Wait until the group has committed a position on every partition of jobs.

    Known shortcoming of the embedded broker with Faust, outside what this
    test is about: a worker that starts on a partition with no committed
    position may skip records it should read from the beginning. With a
    committed position on each partition, the next worker seeks to it.
    """
    from confluent_kafka import Consumer, TopicPartition

    from streams.admin import client_config

    config = {**client_config(settings.broker), "group.id": catalog.app_id}
    partitions = [
        TopicPartition(catalog.jobs.name, p) for p in range(settings.partitions)
    ]
    consumer = Consumer(config)
    deadline = time.monotonic() + timeout
    try:
        while any(t.offset < 0 for t in consumer.committed(partitions, timeout=5)):
            assert time.monotonic() < deadline, "offsets never committed"
            time.sleep(0.5)
    finally:
        consumer.close()


def _alive(child: ChildProcess) -> bool:
    port = (child.env or {})["CONTRACTFLOW_WEB_PORT"]
    url = f"http://127.0.0.1:{port}/healthz"
    with urllib.request.urlopen(url, timeout=2) as reply:
        return reply.status == 200 and json.load(reply) == {"alive": True}


def _wait_ready(children: list[ChildProcess], ready: bool, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(_ready(child) is ready for child in children):
        assert time.monotonic() < deadline, f"workers never became ready={ready}"
        time.sleep(0.2)


def _wait_for_log(children: list[ChildProcess], text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in child.log_tail(200) for child in children):
        assert time.monotonic() < deadline, f"no worker logged {text!r}"
        time.sleep(0.2)
