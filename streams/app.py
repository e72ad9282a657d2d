"""The Faust application: settings applied, tables declared, agents registered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import faust
from prometheus_client import CollectorRegistry

from contracts.generation import RegistryEntry
from contracts.lifecycle import LedgerEntry
from contracts.models import Contract
from streams.api import register_api
from streams.artifacts import ArtifactStore, FileArtifactStore
from streams.codec import Codec
from streams.detector import Deadlines, Detector, detector_interval
from streams.emit import Emitter
from streams.metrics import Metrics
from streams.outputs import Outputs, outputs_config
from streams.scheduler import JobScheduler, RedisScheduler
from streams.settings import Settings
from streams.topics import Catalog, TopicSpec
from streams.transport import App
from streams.web import Readiness, register_views
from tables import ledger, parties, registry, views
from tables.parties import PartyDirectory
from tables.typed import TypedTable
from tables.views import TopicView

# Outputs leave as they are made and a commit only waits for their acks
# (`streams.transport`), so the interval bounds how much a restart processes
# again, not how long a contract takes.
COMMIT_INTERVAL_SECONDS = 1.0


@dataclass
class Runtime:
    """What every stage shares: the app, settings, topics, codec and tables."""

    app: faust.App
    settings: Settings
    catalog: Catalog
    codec: Codec
    ledger: TypedTable[LedgerEntry]
    registry: TypedTable[RegistryEntry]
    parties: PartyDirectory
    states: TopicView[LedgerEntry]
    contracts: TopicView[Contract]
    store: ArtifactStore
    scheduler: JobScheduler
    readiness: Readiness
    metrics: Metrics
    detector: Detector

    def topic(self, spec: TopicSpec) -> faust.TopicT:
        """The Faust topic for `spec`, with raw bytes in and out."""
        return self.app.topic(spec.name, key_serializer="raw", value_serializer="raw")


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured from `settings`, with nothing registered yet."""
    catalog = Catalog(settings)
    app = App(
        catalog.app_id,
        broker=f"kafka://{settings.broker}",
        store="memory://",
        datadir=str(settings.data_dir),
        autodiscover=False,
        web_enabled=True,
        web_port=settings.web_port,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_rebalance_timeout=settings.rebalance_timeout_seconds,
        broker_heartbeat_interval=settings.heartbeat_interval_seconds,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=settings.max_record_bytes + 65536,
        table_standby_replicas=0,
        # A table's persisted offset is only ever what this process's bulk
        # load read of its changelog (`tables.rocksdb`), so it cannot be past
        # the changelog's end. Faust's check compares it with the end the
        # broker lists, which the embedded broker gives as the last batch's
        # first offset plus one: a fully loaded partition would be refused.
        recovery_consistency_check=False,
        stream_wait_empty=False,
        broker_commit_interval=COMMIT_INTERVAL_SECONDS,
    )
    app.outputs = Outputs(outputs_config(settings))
    return app


def build(settings: Settings) -> Runtime:
    """The app with every table and agent registered."""
    from agents import aggregate, commands, generate, intake

    app = create_app(settings)
    catalog = Catalog(settings)
    codec = Codec(settings.schema_registry_url)
    states = views.declare(app, settings, codec, catalog.assignment_states, LedgerEntry)
    contracts = views.declare(app, settings, codec, catalog.contracts, Contract)
    readiness = Readiness()
    metrics = Metrics(CollectorRegistry())
    detector = Detector(
        Deadlines(settings.redis_url, f"{catalog.app_id}:deadline"),
        Emitter(app, catalog, codec, metrics),
        readiness,
        states=states.get,
        contracts=contracts.get,
        grace=timedelta(seconds=settings.missing_contract_grace_seconds),
        lease_seconds=settings.retry_lease_seconds,
    )
    runtime = Runtime(
        app=app,
        settings=settings,
        catalog=catalog,
        codec=codec,
        ledger=ledger.declare(app, settings.partitions, settings.table_store),
        registry=registry.declare(app, settings.partitions, settings.table_store),
        parties=parties.declare(app, settings, catalog, codec),
        states=states,
        contracts=contracts,
        store=FileArtifactStore(settings.artifact_dir),
        scheduler=RedisScheduler(settings.redis_url, f"{catalog.app_id}:retry"),
        readiness=readiness,
        metrics=metrics,
        detector=detector,
    )
    intake.register(runtime)
    generate.register(runtime)
    commands.register(runtime)
    policy = aggregate.policy_of(settings)
    if policy is not None:
        aggregate.register(runtime, policy)
    app.timer(detector_interval(settings.missing_contract_grace_seconds))(detector.tick)
    register_views(runtime)
    register_api(runtime)
    return runtime
