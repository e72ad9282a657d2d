"""Party reference data, read by every worker from the compacted topics."""

from __future__ import annotations

import logging
from typing import Any

import faust

from contracts.errors import PermanentError
from contracts.models import (
    CollaboratorParty,
    CollaboratorRecord,
    OrganizationParty,
    OrganizationRecord,
)
from streams.codec import Codec
from streams.topics import Catalog
from tables.typed import RAW_SCHEMA

log = logging.getLogger(__name__)


class PartyDirectory:
    """Organizations and collaborators by id, as the reference topics last said."""

    def __init__(
        self,
        organizations: faust.GlobalTable,
        collaborators: faust.GlobalTable,
        codec: Codec,
    ) -> None:
        self._organizations = organizations
        self._collaborators = collaborators
        self._codec = codec

    def organization(self, org_id: str) -> OrganizationParty | None:
        record = self._read(self._organizations, org_id, OrganizationRecord)
        if record is None:
            return None
        return OrganizationParty.model_validate(record.model_dump())

    def collaborator(self, collaborator_id: str) -> CollaboratorParty | None:
        record = self._read(self._collaborators, collaborator_id, CollaboratorRecord)
        if record is None:
            return None
        return CollaboratorParty.model_validate(record.model_dump())

    def _read(
        self,
        table: faust.GlobalTable,
        key: str,
        model: type[OrganizationRecord] | type[CollaboratorRecord],
    ) -> OrganizationRecord | CollaboratorRecord | None:
        raw = table.get(key.encode())
        if raw is None:
            return None
        try:
            return self._codec.decode(raw, model)
        except PermanentError:
            # A bad reference row reads as missing: the job retries, then
            # dead-letters as MISSING_PARTY with the reason in the log.
            log.warning("unreadable reference record key=%s", key, exc_info=True)
            return None


def declare(app: faust.App, catalog: Catalog, codec: Codec) -> PartyDirectory:
    """Declare global tables filled straight from the reference topics."""
    tables = [
        _reference_table(app, spec.name, catalog)
        for spec in (catalog.organizations, catalog.collaborators)
    ]
    return PartyDirectory(tables[0], tables[1], codec)


def _reference_table(app: faust.App, topic: str, catalog: Catalog) -> Any:
    table = app.GlobalTable(
        topic.removeprefix(catalog.prefix),
        schema=RAW_SCHEMA,
        partitions=catalog.partitions,
        changelog_topic=app.topic(
            topic,
            key_serializer="raw",
            value_serializer="raw",
            partitions=catalog.partitions,
        ),
    )
    # Faust's partition assignor asks a table for its changelog by the default
    # name ("<app>-<table>-changelog") even when the table reads another topic;
    # the lookup then fails inside the rebalance and the group never settles.
    table._changelog_topic_name = lambda: topic  # type: ignore[method-assign]
    return table
