"""The output actor of a survey: passing alerts published to Kafka, once."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import dramatiq

from boom_tasks.broker import queue_name, stage_actor
from boom_tasks.messages import check_version, hand_on
from boom_tasks.output import claims
from boom_tasks.output.provenance import stack_provenance
from boom_tasks.output.publish import get_producer, publish_batch
from boom_tasks.services.mongo import get_db
from boom_tasks.services.valkey import get_client
from boom_tasks.settings import Settings
from boom_tasks.surveys.base import Survey

log = logging.getLogger(__name__)


def declare(
    broker: dramatiq.Broker,
    survey: Survey,
    settings: Settings,
    next_stage: dramatiq.Actor | None,
) -> dramatiq.Actor:
    """Declare the ``<survey>_output`` actor on its own queue (the last stage)."""
    name = queue_name(survey, "output")

    @stage_actor(broker, name, settings.worker)
    def output(candids: list[int], times: dict[str, float], version: int = 1) -> dict[str, Any]:
        check_version(name, version)
        started = time.monotonic()
        producer = get_producer(settings.kafka)
        db, stack = get_db(settings.mongo), stack_provenance(settings, survey)
        per_filter: Counter[str] = Counter()
        # Only candids this delivery holds: a concurrent delivery of the same candid
        # publishes it instead (see output/claims.py), so nothing is published twice.
        valkey, token = get_client(settings.valkey), claims.delivery_token()
        mine = claims.claim(valkey, survey, candids, token)
        try:
            sent = publish_batch(
                db, survey, producer, mine, times, settings.output, stack, per_filter=per_filter
            )
        finally:  # a failed delivery leaves its alerts to others (a dead one, to its redelivery)
            claims.release(valkey, survey, mine, token)
        hand_on(
            settings, survey.name, "published", candids, times, next_stage, by_filter=per_filter
        )
        log.info(
            "%s: %d alerts, %d published in %.2fs",
            name,
            len(candids),
            sent,
            time.monotonic() - started,
        )
        return {"alerts": len(candids), "published": sent}

    return output
