"""The embedded stack, topic creation, and `contractflow produce` and `tail`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import pytest
import redis
from confluent_kafka.admin import AdminClient, ConfigResource

from streams.admin import consumer_config, create_topics
from streams.devstack import DevStackError, EmbeddedBroker, RedisServer, free_port
from streams.settings import Settings
from streams.topics import Catalog
from tests.integration.conftest import CliRunner, SettingsFactory

pytestmark = pytest.mark.integration


def assignment(assignment_id: str, **fields: object) -> dict[str, object]:
    return {"assignment_id": assignment_id, "status": "ACCEPTED", **fields}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def tail_meta(run_cli: CliRunner, settings: Settings, topic: str) -> list[dict]:
    done = run_cli(settings, "tail", topic, "--from-beginning", "--idle", "2", "--meta")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def cleanup_policies(settings: Settings, names: list[str]) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": settings.broker})
    futures = admin.describe_configs([ConfigResource("topic", n) for n in names])
    return {
        resource.name: future.result()["cleanup.policy"].value
        for resource, future in futures.items()
    }


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_topics_are_created_with_their_cleanup_policies_and_partition_counts(
    settings: Settings,
) -> None:
    catalog = Catalog(settings)

    created = create_topics(settings, catalog)

    assert sorted(created) == sorted(spec.name for spec in catalog)
    policies = cleanup_policies(
        settings, [catalog.contracts.name, catalog.assignments.name]
    )
    assert policies == {
        catalog.contracts.name: "compact",
        catalog.assignments.name: "delete",
    }
    metadata = AdminClient({"bootstrap.servers": settings.broker}).list_topics(
        timeout=10
    )
    counts = {spec.name: len(metadata.topics[spec.name].partitions) for spec in catalog}
    assert set(counts.values()) == {4}


def test_topics_create_command_creates_the_catalog_and_a_second_run_finds_it_there(
    settings: Settings, run_cli: CliRunner
) -> None:
    done = run_cli(settings, "topics", "create")

    assert done.returncode == 0, done.stderr
    assert Catalog(settings).contracts.name in done.stdout
    assert create_topics(settings, Catalog(settings)) == []


def test_produced_lines_are_tailed_back_with_their_keys(
    catalog: Catalog, settings: Settings, run_cli: CliRunner, tmp_path: Path
) -> None:
    records = [assignment(f"a-{n}", rate="450.00") for n in range(5)]
    source = write_lines(tmp_path / "in.jsonl", [json.dumps(r) for r in records])

    produced = run_cli(settings, "produce", "assignments", str(source))
    tailed = tail_meta(run_cli, settings, "assignments")

    assert produced.returncode == 0, produced.stderr
    assert f"produced 5 records to {catalog.assignments.name}" in produced.stdout
    got = sorted((t["key"], t["value"]) for t in tailed)
    assert got == sorted((r["assignment_id"], r) for r in records)


def test_produce_reads_standard_input_and_keys_by_the_field_given(
    catalog: Catalog, settings: Settings, run_cli: CliRunner
) -> None:
    record = {"command_id": "c-1", "request_id": "r-9"}

    done = run_cli(
        settings,
        "produce",
        catalog.commands.name,
        "-",
        "--key",
        "request_id",
        stdin=json.dumps(record) + "\n",
    )

    assert done.returncode == 0, done.stderr
    assert [t["key"] for t in tail_meta(run_cli, settings, "contract.commands")] == [
        "r-9"
    ]


def test_lines_without_a_key_or_not_json_are_reported_and_good_lines_still_produced(
    catalog: Catalog, settings: Settings, run_cli: CliRunner, tmp_path: Path
) -> None:
    lines = [
        json.dumps(assignment("a-1")),
        json.dumps({"status": "ACCEPTED"}),
        "{not json",
        json.dumps(assignment("a-2")),
    ]
    source = write_lines(tmp_path / "mixed.jsonl", lines)

    done = run_cli(settings, "produce", "assignments", str(source))

    assert done.returncode == 1
    assert "line 2: no 'assignment_id' field" in done.stderr
    assert "line 3: not JSON" in done.stderr
    assert "produced 2 records" in done.stdout
    keys = sorted(t["key"] for t in tail_meta(run_cli, settings, "assignments"))
    assert keys == ["a-1", "a-2"]


def test_tail_stops_after_max_records_and_shows_bare_values(
    catalog: Catalog, settings: Settings, run_cli: CliRunner, tmp_path: Path
) -> None:
    records = [assignment(f"a-{n}") for n in range(3)]
    source = write_lines(tmp_path / "in.jsonl", [json.dumps(r) for r in records])
    run_cli(settings, "produce", "assignments", str(source))

    done = run_cli(settings, "tail", "assignments", "--from-beginning", "--max", "2")

    assert done.returncode == 0, done.stderr
    values = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(values) == 2
    assert all(value in records for value in values)


def test_an_unreachable_broker_is_one_line_on_stderr_and_exit_code_two(
    settings_factory: SettingsFactory, run_cli: CliRunner
) -> None:
    settings = settings_factory(broker=f"127.0.0.1:{free_port()}")

    done = run_cli(settings, "--timeout", "1", "tail", "assignments")

    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "did not answer" in done.stderr


def test_producing_to_a_topic_that_was_never_created_is_refused(
    settings: Settings, run_cli: CliRunner
) -> None:
    done = run_cli(settings, "produce", "assignments", "-", stdin="{}\n")

    assert done.returncode == 2
    assert "contractflow topics create" in done.stderr


def test_redis_keeps_data_written_before_a_restart(redis_server: RedisServer) -> None:
    key, value = f"test:{uuid4().hex}", uuid4().hex
    redis.Redis.from_url(redis_server.url).set(key, value)
    pid_before = redis_server.pid

    redis_server.restart()

    assert redis_server.pid != pid_before
    assert redis.Redis.from_url(redis_server.url).get(key) == value.encode()


@pytest.mark.parametrize("binary", ["redis-server", f"redis-server-{uuid4().hex}"])
def test_a_missing_redis_server_says_how_to_install_it(
    binary: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(DevStackError, match="sudo apt-get install redis-server"):
        RedisServer(tmp_path / "data", binary=binary).start()


def test_a_stopped_broker_leaves_no_process_behind(tmp_path: Path) -> None:
    with EmbeddedBroker(tmp_path) as broker:
        pid = broker.pid
        assert pid is not None and process_exists(pid)

    assert not process_exists(pid)
    assert (tmp_path / "tansu.log").stat().st_size > 0


def test_a_broker_that_exits_at_startup_raises_and_leaves_no_process(
    tmp_path: Path,
) -> None:
    broker = EmbeddedBroker(tmp_path, binary="/bin/false")

    with pytest.raises(DevStackError, match="exited during startup"):
        broker.start()

    assert not broker.running()


SERVE_UNTIL_TERMINATED = """
import sys, time
from pathlib import Path
from streams.devstack import RedisServer, exit_on_sigterm
exit_on_sigterm()
with RedisServer(Path(sys.argv[1])) as server:
    print(server.pid, flush=True)
    time.sleep(120)
"""


def test_a_terminated_parent_stops_its_children_first(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", SERVE_UNTIL_TERMINATED, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    try:
        parent.terminate()
        parent.wait(30)

        assert not process_exists(child_pid)
    finally:
        parent.kill()
        parent.wait()
        if process_exists(child_pid):
            os.kill(child_pid, signal.SIGKILL)


def test_consumer_config_carries_the_short_group_timings(settings: Settings) -> None:
    config = consumer_config(settings)

    assert config["session.timeout.ms"] == 6000
    assert config["heartbeat.interval.ms"] == 1000
    assert config["max.poll.interval.ms"] >= config["session.timeout.ms"]
    assert config["enable.auto.commit"] is False
