"""The topic catalog: every topic contractflow reads or writes, internal ones too.

Topics are created up front with their cleanup policy (`contractflow topics
create`), since a record produced before its topic exists can be lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from streams.settings import Settings

HOUR_MS = 3_600_000
# Dead letters wait for an operator; four weeks covers holidays and incidents.
DLQ_RETENTION_MS = 28 * 24 * HOUR_MS


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, cleanup policy and the record field that keys it."""

    name: str
    cleanup: str = "delete"
    key_field: str | None = None
    retention_ms: int | None = None
    internal: bool = False
    config: dict[str, str] = field(default_factory=dict)

    def topic_config(self) -> dict[str, str]:
        config = {"cleanup.policy": self.cleanup, **self.config}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


class Catalog:
    """Names every topic under the configured prefix."""

    def __init__(self, settings: Settings) -> None:
        self.prefix = settings.topic_prefix
        self.partitions = settings.partitions
        self.replication_factor = settings.replication_factor
        self.app_id = f"{self.prefix}{settings.app_id}"
        p = self.prefix

        self.assignments = TopicSpec(f"{p}assignments", key_field="assignment_id")
        self.commands = TopicSpec(f"{p}contract.commands", key_field="command_id")
        self.executions = TopicSpec(f"{p}executions", key_field="assignment_id")
        self.invoices = TopicSpec(f"{p}invoices", key_field="assignment_id")
        self.payments = TopicSpec(f"{p}payments", key_field="assignment_id")
        self.organizations = TopicSpec(
            f"{p}organizations", cleanup="compact", key_field="org_id"
        )
        self.collaborators = TopicSpec(
            f"{p}collaborators", cleanup="compact", key_field="collaborator_id"
        )
        self.jobs = TopicSpec(
            f"{p}contract.jobs", key_field="contract_key", internal=True
        )
        self.contracts = TopicSpec(
            f"{p}contracts", cleanup="compact", key_field="contract_id"
        )
        self.audit = TopicSpec(
            f"{p}contract.audit", cleanup="compact", key_field="audit_id"
        )
        self.notifications = TopicSpec(
            f"{p}contract.notifications",
            cleanup="compact",
            key_field="notification_id",
        )
        self.payment_blocks = TopicSpec(
            f"{p}contract.payment-blocks", cleanup="compact", key_field="scope"
        )
        self.previews = TopicSpec(
            f"{p}contract.previews", key_field="request_id", retention_ms=HOUR_MS
        )
        self.dlq = TopicSpec(
            f"{p}contract.dlq", retention_ms=DLQ_RETENTION_MS, key_field="key"
        )
        # The intake's view of each assignment, read by every worker (commands
        # name assignments that other workers' partitions hold).
        self.assignment_states = TopicSpec(
            f"{p}contract.assignment-states",
            cleanup="compact",
            key_field="scope",
            internal=True,
        )
        # The aggregation policy's acceptances, cancels and ticks, keyed by
        # window group, so every window lives on one partition.
        self.aggregation = TopicSpec(
            f"{p}contract.aggregation", key_field="group", internal=True
        )
        # The contract key of a GenerateContract bundle, told to the intake of
        # each assignment in it. Keyed by assignment_id and partitioned like
        # `assignments`, so it reaches the partition whose ledger holds the
        # assignment; the intake reads both topics.
        self.bundle_links = TopicSpec(
            f"{p}contract.bundle-links", key_field="assignment_id", internal=True
        )
        self.ledger_changelog = self.changelog("ledger")
        self.registry_changelog = self.changelog("registry")
        self.windows_changelog = self.changelog("windows")
        self.closed_windows_changelog = self.changelog("closed-windows")
        # Faust's partition assignor elects its leader through this topic.
        self.assignor_leader = TopicSpec(
            f"{self.app_id}-__assignor-__leader", internal=True
        )

    def changelog(self, table: str) -> TopicSpec:
        """The changelog Faust keeps for `table`, named as Faust names it."""
        return TopicSpec(
            f"{self.app_id}-{table}-changelog", cleanup="compact", internal=True
        )

    def __iter__(self) -> Iterator[TopicSpec]:
        return (v for v in vars(self).values() if isinstance(v, TopicSpec))

    def by_name(self, name: str) -> TopicSpec:
        """The spec of `name`, given with or without the prefix."""
        for spec in self:
            if name in (spec.name, spec.name.removeprefix(self.prefix)):
                return spec
        raise KeyError(name)
