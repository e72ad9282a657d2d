"""Party reference data, read by every worker from the compacted topics."""

from __future__ import annotations

import faust

from contracts.models import (
    CollaboratorParty,
    CollaboratorRecord,
    OrganizationParty,
    OrganizationRecord,
)
from streams.codec import Codec
from streams.settings import Settings
from streams.topics import Catalog
from tables import views
from tables.views import TopicView


class PartyDirectory:
    """Organizations and collaborators by id, as the reference topics last said.

    An unreadable reference row reads as missing: the job retries, then is
    dead-lettered as MISSING_PARTY, and the view logs why.
    """

    def __init__(
        self,
        organizations: TopicView[OrganizationRecord],
        collaborators: TopicView[CollaboratorRecord],
    ) -> None:
        self._organizations = organizations
        self._collaborators = collaborators

    def organization(self, org_id: str) -> OrganizationParty | None:
        record = self._organizations.get(org_id)
        if record is None:
            return None
        return OrganizationParty.model_validate(record.model_dump())

    def collaborator(self, collaborator_id: str) -> CollaboratorParty | None:
        record = self._collaborators.get(collaborator_id)
        if record is None:
            return None
        return CollaboratorParty.model_validate(record.model_dump())


def declare(
    app: faust.App, settings: Settings, catalog: Catalog, codec: Codec
) -> PartyDirectory:
    """Declare the views of the `organizations` and `collaborators` topics."""
    return PartyDirectory(
        views.declare(app, settings, codec, catalog.organizations, OrganizationRecord),
        views.declare(app, settings, codec, catalog.collaborators, CollaboratorRecord),
    )
