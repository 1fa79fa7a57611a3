"""Work a worker process does once after it boots: logging and MongoDB indexes."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.middleware import Middleware

from boom_tasks.ingest.indexes import ensure_indexes
from boom_tasks.services.mongo import get_db
from boom_tasks.settings import Settings
from boom_tasks.surveys import SURVEYS

log = logging.getLogger(__name__)


class WorkerStartup(Middleware):
    """Create every survey's indexes when a worker process boots (after fork)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        """Ensure indexes; idempotent, so every process may do it."""
        db = get_db(self.settings.mongo)
        for survey in SURVEYS.values():
            ensure_indexes(db, survey)
        log.info("worker ready: indexes ensured for %s", ", ".join(SURVEYS))
