"""The production compose file, the image and Prometheus agree with each other.

No container runs here: these tests read the files and check that what one
of them names, the others provide.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.settings import Settings
from streams.topics import Catalog

ROOT = Path(__file__).resolve().parents[2]
# A compose value such as ${NAME:-default} or ${NAME:?message}.
_INTERPOLATED = re.compile(r"\$\{(?P<name>\w+)(?::(?P<op>[-?])(?P<rest>[^}]*))?\}")
GROUP_TIMINGS = ("SESSION_TIMEOUT", "REBALANCE_TIMEOUT", "HEARTBEAT_INTERVAL")


def _yaml(relative: str) -> Any:
    return yaml.safe_load((ROOT / relative).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = _yaml("docker-compose.yml")
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


@pytest.fixture(scope="module")
def workers(services: dict[str, Any]) -> dict[str, Any]:
    return {
        name: service
        for name, service in services.items()
        if _command(service) == ["worker"]
    }


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def _env(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {str(k): str(v) for k, v in environment.items()}


def _resolved(value: str) -> str:
    """The value compose gives when no variable is set (defaults applied)."""
    return _INTERPOLATED.sub(lambda m: m["rest"] if m["op"] == "-" else "", value)


def _setting(service: dict[str, Any], field: str) -> str:
    return _resolved(_env(service).get(f"CONTRACTFLOW_{field.upper()}", ""))


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Mount point → named volume or host path, for short and long syntax."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume["source"]
        else:
            source, target = volume.split(":")[:2]
            mounts[target] = source
    return mounts


def _host_ports(service: dict[str, Any]) -> list[str]:
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.append(str(port["published"]))
        else:
            ports.append(str(port).rsplit(":", 2)[-2])
    return ports


def _container_ports(service: dict[str, Any]) -> list[str]:
    return [
        str(p["target"]) if isinstance(p, dict) else str(p).rsplit(":", 1)[-1]
        for p in service.get("ports", [])
    ]


def _dockerfile_env(dockerfile: str) -> dict[str, str]:
    joined = dockerfile.replace("\\\n", " ")
    found: dict[str, str] = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            found.update(re.findall(r"(\w+)=(\S+)", line))
    return found


def test_the_stack_has_kafka_redis_the_topics_job_two_workers_and_prometheus(
    services: dict[str, Any], workers: dict[str, Any]
) -> None:
    assert {"kafka", "redis", "topics", "prometheus"} <= services.keys()
    assert len(workers) == 2


def test_every_contractflow_variable_set_is_a_setting(
    services: dict[str, Any], dockerfile: str
) -> None:
    fields = {f"CONTRACTFLOW_{name.upper()}" for name in Settings.model_fields}
    names = {
        name
        for service in services.values()
        for name in _env(service)
        if name.startswith("CONTRACTFLOW_")
    }
    names |= {n for n in _dockerfile_env(dockerfile) if n.startswith("CONTRACTFLOW_")}

    assert names
    assert names <= fields, sorted(names - fields)


def test_workers_share_one_artifact_volume_at_one_path_and_store_pdfs_in_it(
    compose: dict[str, Any], workers: dict[str, Any]
) -> None:
    places = set()
    for service in workers.values():
        artifact_dir = Path(_setting(service, "artifact_dir"))
        mounts = {Path(target): source for target, source in _mounts(service).items()}
        holding = [t for t in mounts if artifact_dir.is_relative_to(t)]
        assert holding, f"{artifact_dir} is on no volume"
        places.add((mounts[holding[0]], holding[0]))

    assert len(places) == 1
    volume, _ = places.pop()
    assert volume in compose["volumes"], "the artifact volume is not a named volume"


def test_workers_reach_kafka_on_its_internal_listener(
    services: dict[str, Any], workers: dict[str, Any]
) -> None:
    kafka = _env(services["kafka"])
    listeners = _resolved(kafka["KAFKA_ADVERTISED_LISTENERS"]).split(",")
    advertised = dict(item.split("://", 1) for item in listeners)
    internal = advertised[kafka["KAFKA_INTER_BROKER_LISTENER_NAME"]]

    assert internal.split(":")[0] == "kafka"
    for service in workers.values():
        assert _setting(service, "broker") == internal


def test_workers_reach_redis_by_its_service_name(
    services: dict[str, Any], workers: dict[str, Any]
) -> None:
    assert "redis" in services
    for service in workers.values():
        url = urlsplit(_setting(service, "redis_url"))
        assert (url.scheme, url.hostname, url.port or 6379) == ("redis", "redis", 6379)


def test_redis_keeps_an_append_only_file_on_a_volume(
    services: dict[str, Any],
) -> None:
    redis = services["redis"]
    command = _command(redis)

    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "/data" in _mounts(redis)


def test_prometheus_scrapes_every_worker_on_its_internal_web_port(
    services: dict[str, Any], workers: dict[str, Any]
) -> None:
    config = _yaml("deploy/prometheus.yml")
    jobs = config["scrape_configs"]
    targets = {
        target
        for job in jobs
        if job.get("metrics_path", "/metrics") == "/metrics"
        for group in job["static_configs"]
        for target in group["targets"]
    }
    expected = {f"{name}:{_setting(s, 'web_port')}" for name, s in workers.items()}

    assert targets == expected
    for service in workers.values():
        assert _container_ports(service) == [_setting(service, "web_port")]
        assert _setting(service, "web_host") == "0.0.0.0"
    mounted = _mounts(services["prometheus"])
    assert mounted["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus.yml"


def test_alert_rules_name_only_metrics_a_worker_exports() -> None:
    registry = Metrics(CollectorRegistry()).registry
    exported = {s.name for family in registry.collect() for s in family.samples}
    rules = [
        rule
        for group in _yaml("deploy/alerts.yml")["groups"]
        for rule in group["rules"]
    ]
    named = {m for rule in rules for m in re.findall(r"contractflow_\w+", rule["expr"])}

    assert named
    assert named <= exported, sorted(named - exported)


def test_published_host_ports_are_unique(services: dict[str, Any]) -> None:
    ports = [port for service in services.values() for port in _host_ports(service)]

    assert ports
    assert len(ports) == len(set(ports)), sorted(ports)


def test_the_topics_job_names_and_sizes_topics_as_the_workers_do(
    services: dict[str, Any], workers: dict[str, Any]
) -> None:
    topics = services["topics"]
    shared = ("broker", "topic_prefix", "partitions", "replication_factor", "app_id")

    assert _command(topics) == ["topics", "create"]
    for service in workers.values():
        for field in shared:
            assert _setting(service, field) == _setting(topics, field), field


def test_workers_start_after_the_topics_job_and_healthy_kafka_and_redis(
    workers: dict[str, Any],
) -> None:
    for service in workers.values():
        depends = service["depends_on"]
        assert depends["topics"]["condition"] == "service_completed_successfully"
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_kafka_and_redis_have_a_healthcheck(services: dict[str, Any]) -> None:
    for name in ("kafka", "redis"):
        assert services[name]["healthcheck"]["test"], name


def test_kafka_is_the_apache_image_in_kraft_mode_with_its_logs_on_a_volume(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    kafka = services["kafka"]
    env = _env(kafka)
    roles = set(env["KAFKA_PROCESS_ROLES"].split(","))

    assert kafka["image"].startswith("apache/kafka:")
    assert roles == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@")
    assert _mounts(kafka)[env["KAFKA_LOG_DIRS"]] in compose["volumes"]


def test_every_pulled_image_is_pinned_to_a_version(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue
        _, _, tag = service["image"].rpartition(":")
        assert tag and tag != "latest" and "/" not in tag, name


def test_production_leaves_the_group_timings_at_kafkas_defaults(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        for variable in _env(service):
            assert not any(t in variable for t in GROUP_TIMINGS), (name, variable)


def test_the_jwt_secret_comes_from_the_environment_with_no_default(
    workers: dict[str, Any],
) -> None:
    for service in workers.values():
        value = _env(service)["CONTRACTFLOW_JWT_SECRET"]
        match = _INTERPOLATED.fullmatch(value)
        assert match is not None and match["op"] == "?", value


def test_the_image_entrypoint_is_the_console_script_of_the_project(
    dockerfile: str,
) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lines = [line for line in dockerfile.splitlines() if line.startswith("ENTRYPOINT")]

    assert len(lines) == 1
    entrypoint = json.loads(lines[0].removeprefix("ENTRYPOINT"))
    assert entrypoint == ["contractflow"]
    assert entrypoint[0] in pyproject["project"]["scripts"]


def test_the_image_is_python_311_slim_and_installs_no_extras(dockerfile: str) -> None:
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]

    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert installs
    assert not any("[" in line for line in installs), installs


def test_the_image_runs_as_a_user_that_owns_the_artifact_directory(
    dockerfile: str, workers: dict[str, Any]
) -> None:
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)

    assert users and users[-1] not in ("root", "0")
    for service in workers.values():
        assert _setting(service, "artifact_dir") in dockerfile


def test_the_asyncapi_document_names_exactly_the_catalogs_topics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONTRACTFLOW_TOPIC_PREFIX", raising=False)
    monkeypatch.delenv("CONTRACTFLOW_APP_ID", raising=False)
    catalog = Catalog(Settings(_env_file=None))  # type: ignore[call-arg]
    channels = _yaml("docs/asyncapi.yaml")["channels"].values()

    assert {c["address"] for c in channels} == {spec.name for spec in catalog}
