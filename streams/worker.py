"""Running a worker: topics ensured, the Faust app built and started."""

from __future__ import annotations

import logging

import faust

from streams.admin import create_topics
from streams.app import build
from streams.settings import Settings
from streams.topics import Catalog
from tables.typed import reset_local_tables

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> int:
    """Run one worker until it is stopped (SIGTERM or SIGINT); return its exit code."""
    catalog = Catalog(settings)
    create_topics(settings, catalog)
    runtime = build(settings)
    reset_local_tables(runtime.app)
    log.info(
        "starting worker app_id=%s broker=%s web_port=%d partitions=%d",
        catalog.app_id,
        settings.broker,
        settings.web_port,
        settings.partitions,
    )
    worker = faust.Worker(
        runtime.app,
        loglevel=settings.log_level,
    )
    worker.execute_from_commandline()
    return 0
