"""Broker administration and client configuration for confluent-kafka.

Topics are created up front, each with its cleanup policy and the configured
partition count: a record produced before its topic exists can be lost.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewTopic

from contracts.errors import ContractflowError
from streams.settings import Settings
from streams.topics import Catalog

log = logging.getLogger(__name__)
# librdkafka logs every refused connection, again and again; its lines go to
# a child logger so that a command line can quiet them and keep ours.
client_log = logging.getLogger(f"{__name__}.librdkafka")

METADATA_POLL_SECONDS = 0.2


class BrokerUnavailableError(ContractflowError):
    """The broker did not answer in time."""


class TopicCreationError(ContractflowError):
    """The broker refused to create a topic, or never showed it."""


def client_config(bootstrap: str) -> dict[str, Any]:
    """Return what every confluent-kafka client of contractflow is given."""
    return {"bootstrap.servers": bootstrap, "logger": client_log}


def producer_config(settings: Settings) -> dict[str, Any]:
    """Return the configuration of an idempotent, fully acknowledged producer."""
    return {
        **client_config(settings.broker),
        "client.id": f"{Catalog(settings).app_id}-producer",
        "enable.idempotence": True,
        "acks": "all",
        # Faust (aiokafka) and the Java client hash keys with murmur2; so must
        # we, or a keyed record lands on another partition than the worker's.
        "partitioner": "murmur2_random",
    }


def consumer_config(settings: Settings, group_id: str | None = None) -> dict[str, Any]:
    """Return a consumer configuration with the group timings of `settings`."""
    # Without group_id the tools read as a throwaway group that never commits.
    session_ms = _millis(settings.session_timeout_seconds)
    # librdkafka sends max.poll.interval.ms as the rebalance timeout and
    # refuses one below the session timeout.
    rebalance_ms = max(_millis(settings.rebalance_timeout_seconds), session_ms + 1000)
    app_id = Catalog(settings).app_id
    return {
        **client_config(settings.broker),
        "group.id": group_id or f"{app_id}-tool-{uuid.uuid4().hex[:12]}",
        "client.id": f"{app_id}-consumer",
        "session.timeout.ms": session_ms,
        "max.poll.interval.ms": rebalance_ms,
        "heartbeat.interval.ms": _millis(settings.heartbeat_interval_seconds),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }


def wait_for_broker(bootstrap: str, timeout: float = 30) -> ClusterMetadata:
    """Return the cluster metadata once the broker answers; raise if it never does."""
    return _metadata(AdminClient(client_config(bootstrap)), bootstrap, timeout)


def create_topics(
    settings: Settings, catalog: Catalog, *, timeout: float = 30
) -> list[str]:
    """Create every topic of `catalog` that is missing; return the names created."""
    deadline = time.monotonic() + timeout
    admin = AdminClient(client_config(settings.broker))
    _metadata(admin, settings.broker, timeout)

    created = _create(admin, catalog, settings.replication_factor, timeout)
    _await_topics(admin, settings.broker, catalog, deadline)
    log.info("topics ready created=%d total=%d", len(created), len(list(catalog)))
    return created


def _create(
    admin: AdminClient, catalog: Catalog, replication: int, timeout: float
) -> list[str]:
    new_topics = [
        NewTopic(spec.name, catalog.partitions, replication, config=spec.topic_config())
        for spec in catalog
    ]
    futures = admin.create_topics(
        new_topics, operation_timeout=timeout, request_timeout=timeout
    )
    created: list[str] = []
    failures: list[str] = []
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                log.debug("topic exists topic=%s", name)
                continue
            failures.append(f"{name}: {error.str()}")
        else:
            log.info("created topic topic=%s", name)
            created.append(name)
    if failures:
        raise TopicCreationError("cannot create topics: " + "; ".join(failures))
    return created


def _await_topics(
    admin: AdminClient, bootstrap: str, catalog: Catalog, deadline: float
) -> None:
    # A created topic can take a moment to appear in metadata with all of its
    # partitions; an existing topic with another count never will.
    while True:
        remaining = max(deadline - time.monotonic(), 0.1)
        problems = _topic_problems(_metadata(admin, bootstrap, remaining), catalog)
        if not problems:
            return
        if time.monotonic() >= deadline:
            raise TopicCreationError("topics not ready: " + "; ".join(problems))
        time.sleep(METADATA_POLL_SECONDS)


def _topic_problems(metadata: ClusterMetadata, catalog: Catalog) -> list[str]:
    problems = []
    for spec in catalog:
        topic = metadata.topics.get(spec.name)
        if topic is None or topic.error is not None:
            problems.append(f"{spec.name} missing")
        elif len(topic.partitions) != catalog.partitions:
            problems.append(
                f"{spec.name} has {len(topic.partitions)} partitions, "
                f"expected {catalog.partitions}"
            )
    return problems


def _metadata(admin: AdminClient, bootstrap: str, timeout: float) -> ClusterMetadata:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return admin.list_topics(timeout=max(deadline - time.monotonic(), 0.1))
        except KafkaException as exc:
            if time.monotonic() >= deadline:
                raise BrokerUnavailableError(
                    f"broker at {bootstrap} did not answer within {timeout:g}s: "
                    f"{exc.args[0].str()}"
                ) from exc
            time.sleep(METADATA_POLL_SECONDS)


def _millis(seconds: float) -> int:
    return round(seconds * 1000)
