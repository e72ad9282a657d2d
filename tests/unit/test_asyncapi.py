"""The AsyncAPI document: current, complete, and true to the catalog."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas import all_schemas
from streams import cli
from streams.asyncapi import AVRO_FORMAT, channel_id, document, render, usage_of
from streams.settings import Settings
from streams.topics import Catalog, TopicSpec

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "asyncapi.yaml"
REGENERATE = "contractflow asyncapi --output docs/asyncapi.yaml"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The default settings, whatever the environment of the test run holds."""
    for name in list(os.environ):
        if name.startswith("CONTRACTFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT / "docs")  # no .env file there
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def committed() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


def test_the_document_is_current(settings: Settings) -> None:
    assert render(settings) == DOCUMENT.read_text(encoding="utf-8"), (
        f"docs/asyncapi.yaml is out of date; run `{REGENERATE}`"
    )


def test_the_document_reads_back_as_the_document_it_was_written_from(
    settings: Settings,
) -> None:
    assert yaml.safe_load(render(settings)) == document(settings)


def test_the_document_is_asyncapi_3(committed: dict[str, Any]) -> None:
    assert committed["asyncapi"] == "3.0.0"


def test_every_catalog_topic_has_a_channel_at_its_address(
    settings: Settings, committed: dict[str, Any]
) -> None:
    addresses = {c["address"] for c in committed["channels"].values()}

    assert addresses == {spec.name for spec in Catalog(settings)}


def test_every_schema_file_is_the_payload_of_a_message_on_some_channel(
    committed: dict[str, Any],
) -> None:
    components = committed["components"]
    on_channels = {
        ref["$ref"].rsplit("/", 1)[1]
        for channel in committed["channels"].values()
        for ref in channel.get("messages", {}).values()
    }
    payloads = {
        components["messages"][name]["payload"]["$ref"].rsplit("/", 1)[1]
        for name in on_channels
    }
    embedded = [components["schemas"][name]["schema"] for name in payloads]

    for path in sorted((ROOT / "schemas").glob("*.avsc")):
        assert json.loads(path.read_text(encoding="utf-8")) in embedded, path.name


def test_every_loaded_schema_is_embedded_as_avro(committed: dict[str, Any]) -> None:
    schemas = committed["components"]["schemas"]

    for schema in all_schemas():
        short = schema.name.rsplit(".", 1)[1]
        assert schemas[short]["schemaFormat"] == AVRO_FORMAT
        assert schemas[short]["schema"] == json.loads(schema.source)


def test_every_reference_points_at_something_in_the_document(
    committed: dict[str, Any],
) -> None:
    for ref in _references(committed):
        target: Any = committed
        for part in ref.removeprefix("#/").split("/"):
            assert part in target, ref
            target = target[part]


def test_what_a_worker_consumes_is_received_and_what_it_produces_is_sent(
    committed: dict[str, Any],
) -> None:
    operations = committed["operations"]
    actions = {
        (op["action"], op["channel"]["$ref"].rsplit("/", 1)[1])
        for op in operations.values()
    }

    assert ("receive", "assignments") in actions
    assert ("receive", "contract_jobs") in actions
    assert ("send", "contract_jobs") in actions
    assert ("send", "contracts") in actions
    assert ("send", "contract_dlq") in actions
    assert ("send", "contract_audit") in actions
    assert ("send", "organizations") not in actions
    assert ("receive", "contract_audit") not in actions


def test_the_agents_topics_are_received_in_the_workers_consumer_group(
    settings: Settings, committed: dict[str, Any]
) -> None:
    group = committed["operations"]["receive_assignments"]["bindings"]["kafka"]

    assert group["groupId"]["enum"] == [Catalog(settings).app_id]


def test_each_channel_has_the_cleanup_policy_and_retention_of_its_topic(
    settings: Settings, committed: dict[str, Any]
) -> None:
    for spec in Catalog(settings):
        binding = committed["channels"][channel_id(spec.name)]["bindings"]["kafka"]
        config = binding["topicConfiguration"]

        assert config["cleanup.policy"] == [spec.cleanup], spec.name
        assert config.get("retention.ms") == spec.retention_ms, spec.name
        assert binding["partitions"] == settings.partitions


def test_every_message_describes_its_key_as_a_string(
    committed: dict[str, Any],
) -> None:
    for name, message in committed["components"]["messages"].items():
        key = message["bindings"]["kafka"]["key"]

        assert key["type"] == "string", name
        assert key["description"], name


def test_faust_internal_topics_have_a_described_channel_without_messages(
    settings: Settings, committed: dict[str, Any]
) -> None:
    catalog = Catalog(settings)
    internal = [
        catalog.ledger_changelog,
        catalog.registry_changelog,
        catalog.assignor_leader,
    ]

    for spec in internal:
        channel = committed["channels"][channel_id(spec.name)]
        assert "messages" not in channel, spec.name
        assert channel["description"], spec.name


def test_a_topic_the_generator_does_not_know_is_refused(settings: Settings) -> None:
    with pytest.raises(KeyError, match=r"contract\.mystery"):
        usage_of(Catalog(settings), TopicSpec("contract.mystery"))


def test_a_topic_prefix_reaches_every_address(settings: Settings) -> None:
    prefixed = settings.model_copy(update={"topic_prefix": "acme."})

    channels = document(prefixed)["channels"].values()

    assert all(c["address"].startswith("acme.") for c in channels)


def test_the_command_writes_the_document_to_the_output_path(
    settings: Settings, tmp_path: Path
) -> None:
    target = tmp_path / "asyncapi.yaml"

    assert cli.main(["asyncapi", "--output", str(target)]) == cli.EXIT_OK
    assert target.read_text(encoding="utf-8") == render(settings)


def test_the_command_prints_the_document_without_an_output_path(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["asyncapi"]) == cli.EXIT_OK
    assert capsys.readouterr().out == render(settings)


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)
