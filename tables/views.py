"""Read-only views of compacted topics, held by every worker.

Each worker follows every partition of the topic and can read the latest
record of any key. Records stay as the producer wrote them (Avro or JSON) and
are decoded on read.
"""

from __future__ import annotations

import logging
from typing import Generic, TypeVar

import faust

from contracts.errors import PermanentError
from contracts.models import Record
from streams.codec import Codec
from streams.follower import TopicFollower
from streams.settings import Settings
from streams.topics import TopicSpec

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Record)


class TopicView(Generic[R]):
    """The latest record of each key of one compacted topic."""

    def __init__(self, follower: TopicFollower, codec: Codec, model: type[R]) -> None:
        self._table = follower
        self._codec = codec
        self._model = model

    def get(self, key: str) -> R | None:
        """The latest record under `key`; an unreadable one reads as missing."""
        raw = self._table.get(key.encode())
        if raw is None:
            return None
        try:
            return self._codec.decode(raw, self._model)
        except PermanentError:
            log.warning(
                "unreadable record in view model=%s key=%s",
                self._model.__name__,
                key,
                exc_info=True,
            )
            return None

    def __len__(self) -> int:
        return len(self._table)


def declare(
    app: faust.App,
    settings: Settings,
    codec: Codec,
    spec: TopicSpec,
    model: type[R],
) -> TopicView[R]:
    """Declare the view of `spec`, followed from the worker's start on."""
    follower = TopicFollower(settings.broker, spec.name, settings.partitions)

    @app.task
    async def follow() -> None:
        follower.start()

    return TopicView(follower, codec, model)
