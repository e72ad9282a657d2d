"""The AsyncAPI 3.0 description of every topic, built from the catalog and schemas.

`contractflow asyncapi` prints it; `docs/asyncapi.yaml` is its output under
the default settings (no `CONTRACTFLOW_*` variable set), and a test keeps the
two equal. Channels, operations and components are sorted by id and the Avro
schemas are embedded as their `.avsc` files spell them, so the same catalog
and schemas always give the same text.

Operations are seen from contractflow: what its workers or its operator
commands read is `receive`, what they write is `send`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from contracts.aggregation import WindowInput
from contracts.commands import Command
from contracts.lifecycle import BundleLink, LedgerEntry
from contracts.models import (
    AssignmentEvent,
    AuditEvent,
    CollaboratorRecord,
    Contract,
    ContractJob,
    DeadLetter,
    Notification,
    OrganizationRecord,
    PaymentBlock,
    PreviewReply,
    Record,
)
from contracts.timeline import FactEvent
from schemas import schema_for
from streams import yamltext
from streams.settings import Settings
from streams.topics import Catalog, TopicSpec

ASYNCAPI_VERSION = "3.0.0"
# The Avro release whose specification the `.avsc` files follow.
AVRO_FORMAT = "application/vnd.apache.avro;version=1.9.0"
KAFKA_BINDING_VERSION = "0.5.0"
CONTENT_TYPE = "application/octet-stream"

DESCRIPTION = (
    "Turns accepted assignments into issued, auditable contracts. Keys are "
    "UTF-8 strings. Values are Avro: single-object encoding (C3 01, the "
    "schema's CRC-64-AVRO fingerprint, the body), or the Confluent wire format "
    "when a schema registry is configured. Input topics also accept a UTF-8 "
    "JSON object with the same field names. A record carries a W3C traceparent "
    "header when the input that caused it had one. Producers must partition "
    "keys with murmur2, as the Java client and Faust do."
)


@dataclass(frozen=True)
class Usage:
    """What a topic holds and how contractflow reads and writes it."""

    description: str
    model: type[Record] | None = None
    receive: str | None = None
    send: str | None = None
    # Read by an agent, in the worker's consumer group (committed offsets).
    grouped: bool = False


_FACTS = "Read at request time to compose mission timelines (API and CLI)."
_FOLLOWED = "followed from the beginning by every worker, kept in memory"

USAGES: Mapping[str, Usage] = {
    "assignments": Usage(
        "Lifecycle events of assignments, from backend and frontend services.",
        AssignmentEvent,
        receive="The intake validates events, keeps the ledger, enqueues jobs.",
        send="`contractflow dlq redrive` resubmits a dead-lettered event as is.",
        grouped=True,
    ),
    "contract.commands": Usage(
        "Explicit requests from backend services: bundles, amendments, "
        "draft previews and void resolutions.",
        Command,
        receive="The commands stage carries out each request.",
        grouped=True,
    ),
    "executions": Usage("Execution facts from other systems.", FactEvent, _FACTS),
    "invoices": Usage("Invoice facts from other systems.", FactEvent, _FACTS),
    "payments": Usage("Payment facts from other systems.", FactEvent, _FACTS),
    "organizations": Usage(
        "Party reference data of organizations, latest record per org_id.",
        OrganizationRecord,
        receive=f"Parties of a contract, {_FOLLOWED}.",
    ),
    "collaborators": Usage(
        "Party reference data of collaborators, latest record per collaborator_id.",
        CollaboratorRecord,
        receive=f"Parties of a contract, {_FOLLOWED}.",
    ),
    "contract.jobs": Usage(
        "Generation jobs and cancel markers, in order per contract key.",
        ContractJob,
        receive="The generator issues, re-emits or skips each job.",
        send="Intake and commands enqueue jobs; retries and redrives resubmit.",
        grouped=True,
    ),
    "contracts": Usage(
        "Issued contracts and amendments; the latest status of a contract wins.",
        Contract,
        receive=f"Issued contracts, {_FOLLOWED}, and read for timelines.",
        send="The generator issues and re-emits contracts; voids update them.",
    ),
    "contract.audit": Usage(
        "One audit record per generation attempt and per step.",
        AuditEvent,
        send="Every stage audits what it decided.",
    ),
    "contract.notifications": Usage(
        "Refusals and warnings for people, such as CONTRACT_EXPECTED_WARNING.",
        Notification,
        receive=_FACTS,
        send="The stages refuse requests and warn about missing contracts.",
    ),
    "contract.payment-blocks": Usage(
        "Payment blocks raised when a contract's void is requested.",
        PaymentBlock,
        receive=_FACTS,
        send="A cancel after issuance raises a block; a void resolution ends it.",
    ),
    "contract.previews": Usage(
        "Draft previews, kept for an hour; they carry no contract id.",
        PreviewReply,
        send="The commands stage replies to RequestDraftPreview.",
    ),
    "contract.dlq": Usage(
        "Records that could not be processed, with their raw bytes and reason.",
        DeadLetter,
        receive="`contractflow dlq list` and `dlq redrive` read the letters.",
        send="Every stage dead-letters what it cannot process.",
    ),
    "contract.assignment-states": Usage(
        "The intake's view of each assignment, latest entry per scope.",
        LedgerEntry,
        receive=f"Assignment states, {_FOLLOWED}.",
        send="The intake publishes each assignment's new ledger entry.",
    ),
    "contract.aggregation": Usage(
        "Acceptances and cancels the aggregation policy holds, by window group, "
        "and wall-clock ticks sent to every partition.",
        WindowInput,
        receive="The aggregation stage bundles each window's acceptances.",
        send="The intake forwards what the policy holds; every worker ticks.",
        grouped=True,
    ),
    "contract.bundle-links": Usage(
        "The contract key of each GenerateContract bundle, one record per "
        "assignment in it, partitioned like assignments.",
        BundleLink,
        receive="The intake records each assignment's bundle key in the ledger, "
        "so a cancel voids the bundle's contract.",
        send="The commands stage links a bundle once its job is acknowledged.",
        grouped=True,
    ),
}

TABLES: Mapping[str, str] = {
    "ledger": "each assignment's state and accepted terms",
    "registry": "the contract keys already issued",
    "windows": "the aggregation policy's open windows, per partition",
    "closed-windows": "the contract key each closed window gave its members",
}

KEYS: Mapping[str, str] = {
    "key": "The key of the record that failed, or null-key when it had none.",
    "scope": "The scope org_id/project_id/assignment_id, parts percent-encoded.",
    "assignment_id": "The assignment_id, by producers' convention.",
}

TRACE_HEADERS = {
    "type": "object",
    "properties": {
        "traceparent": {
            "type": "string",
            "description": "W3C trace context, carried from the input to outputs.",
        }
    },
}


def render(settings: Settings) -> str:
    """Return the AsyncAPI document of the catalog under `settings`, as YAML."""
    return yamltext.dumps(document(settings))


def document(settings: Settings) -> dict[str, Any]:
    """Return the AsyncAPI document of the catalog under `settings`."""
    catalog = Catalog(settings)
    usages = {spec.name: usage_of(catalog, spec) for spec in catalog}
    specs = sorted(catalog, key=lambda spec: channel_id(spec.name))
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "contractflow",
            "version": metadata.version("contractflow"),
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": settings.broker,
                "protocol": "kafka",
                "description": "The bootstrap servers of CONTRACTFLOW_BROKER.",
            }
        },
        "channels": {
            channel_id(s.name): _channel(catalog, s, usages[s.name]) for s in specs
        },
        "operations": _operations(catalog, specs, usages),
        "components": _components(catalog, usages),
    }


def usage_of(catalog: Catalog, spec: TopicSpec) -> Usage:
    """Return how contractflow uses `spec`; raise if the topic is not described."""
    name = spec.name.removeprefix(catalog.prefix)
    if name in USAGES:
        return USAGES[name]
    faust = spec.name.removeprefix(f"{catalog.app_id}-")
    if faust == "__assignor-__leader":
        return Usage(
            "Faust's partition assignor elects its group leader through this topic.",
            receive="Faust reads it.",
            send="Faust writes it.",
        )
    table = faust.removesuffix("-changelog")
    if faust != spec.name and table in TABLES:
        return Usage(
            f"Changelog of Faust's {table} table: {TABLES[table]}.",
            receive="Faust restores the table from it after a restart or rebalance.",
            send="Faust records every change of the table.",
        )
    raise KeyError(f"topic {spec.name} is not described in streams/asyncapi.py")


def channel_id(name: str) -> str:
    """Return an AsyncAPI id for a topic name (letters, digits, `_` and `-`)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _channel(catalog: Catalog, spec: TopicSpec, usage: Usage) -> dict[str, Any]:
    channel: dict[str, Any] = {"address": spec.name, "description": usage.description}
    if usage.model is not None:
        name = usage.model.__name__
        channel["messages"] = {name: {"$ref": f"#/components/messages/{name}"}}
    channel["bindings"] = {
        "kafka": {
            "topic": spec.name,
            "partitions": catalog.partitions,
            "replicas": catalog.replication_factor,
            "topicConfiguration": _topic_configuration(spec),
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }
    return channel


def _topic_configuration(spec: TopicSpec) -> dict[str, Any]:
    configuration: dict[str, Any] = {}
    for key, value in sorted(spec.topic_config().items()):
        if key == "cleanup.policy":
            configuration[key] = value.split(",")
        elif key.endswith((".ms", ".bytes")):
            configuration[key] = int(value)
        else:
            configuration[key] = value
    return configuration


def _operations(
    catalog: Catalog, specs: list[TopicSpec], usages: Mapping[str, Usage]
) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for spec in specs:
        usage, ident = usages[spec.name], channel_id(spec.name)
        for action, summary in (("receive", usage.receive), ("send", usage.send)):
            if summary is None:
                continue
            operation: dict[str, Any] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{ident}"},
                "summary": summary,
            }
            if usage.model is not None:
                message = f"#/channels/{ident}/messages/{usage.model.__name__}"
                operation["messages"] = [{"$ref": message}]
            if action == "receive" and usage.grouped:
                operation["bindings"] = {"kafka": _group_binding(catalog)}
            operations[f"{action}_{ident}"] = operation
    return dict(sorted(operations.items()))


def _group_binding(catalog: Catalog) -> dict[str, Any]:
    return {
        "groupId": {"type": "string", "enum": [catalog.app_id]},
        "bindingVersion": KAFKA_BINDING_VERSION,
    }


def _components(catalog: Catalog, usages: Mapping[str, Usage]) -> dict[str, Any]:
    keys = _key_fields(catalog, usages)
    messages, schemas = {}, {}
    for model in sorted(keys, key=lambda m: m.__name__):
        name, schema = model.__name__, schema_for(model)
        source = json.loads(schema.source)
        messages[name] = _message(name, source.get("doc", ""), keys[model])
        schemas[name] = {"schemaFormat": AVRO_FORMAT, "schema": source}
    schemas["TraceHeaders"] = TRACE_HEADERS
    return {"messages": messages, "schemas": dict(sorted(schemas.items()))}


def _key_fields(
    catalog: Catalog, usages: Mapping[str, Usage]
) -> dict[type[Record], str]:
    # A message describes its key once, so every topic of a model keys it alike.
    keys: dict[type[Record], str] = {}
    for spec in catalog:
        model = usages[spec.name].model
        if model is None:
            continue
        key = spec.key_field or "key"
        if keys.setdefault(model, key) != key:
            raise ValueError(f"{model.__name__} is keyed by two fields")
    return keys


def _message(name: str, summary: str, key_field: str) -> dict[str, Any]:
    key = KEYS.get(key_field, f"The record's {key_field}.")
    return {
        "name": name,
        "summary": summary,
        "contentType": CONTENT_TYPE,
        "headers": {"$ref": "#/components/schemas/TraceHeaders"},
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": key},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
