"""Work a worker process does once: indexes and models at boot, a Kafka flush at shutdown."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.middleware import Middleware

from boom_tasks.entry import EXIT_BAD_CONFIG
from boom_tasks.errors import ConfigError
from boom_tasks.ingest.indexes import ensure_indexes
from boom_tasks.ml.actor import survey_models
from boom_tasks.output.publish import flush_producer
from boom_tasks.science.actor import prepare_all
from boom_tasks.science.loader import survey_actors
from boom_tasks.services.mongo import get_db
from boom_tasks.settings import Settings
from boom_tasks.surveys import SURVEYS

log = logging.getLogger(__name__)


class WorkerStartup(Middleware):
    """Create indexes, load models and set up science actors when a worker boots (after fork)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        """Configure each survey, ensure indexes (idempotent) and load the models.

        A bad model entry or a science actor whose setup fails stops the process loudly.
        """
        db = get_db(self.settings.mongo)
        for survey in SURVEYS.values():
            if survey.configure is not None:
                survey.configure(self.settings)
            ensure_indexes(db, survey)
            try:
                survey_models(survey, self.settings)
                prepare_all(survey_actors(self.settings.science.actors, survey.name))
            except ConfigError as e:  # a bad model entry, a science actor's failed setup
                # Dramatiq logs and swallows a middleware's exceptions; a worker without
                # its models would dead-letter every ML batch, so the process exits.
                log.critical("worker cannot start: %s", e)
                raise SystemExit(EXIT_BAD_CONFIG) from None
        log.info("worker ready: indexes ensured and models loaded for %s", ", ".join(SURVEYS))

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Deliver what the output producer still holds before the process exits."""
        left = flush_producer(self.settings.output.flush_timeout_s)
        if left:
            log.error("%d output messages were still undelivered at shutdown", left)
