"""The ingest actor of a survey: a batch key in, candids out to the next stage."""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq

from boom_tasks.batches import complete_batch, load_batch
from boom_tasks.broker import queue_name, stage_actor
from boom_tasks.conductor.counters import record_ingested
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.messages import check_version, hand_on
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
    """Declare the ``<survey>_ingest`` actor on its own queue, so surveys scale apart."""
    name = queue_name(survey, "ingest")

    @stage_actor(broker, name, settings.worker)
    def ingest(batch_key: str, count: int, received_at: float, version: int = 1) -> dict[str, Any]:
        check_version(name, version)
        valkey = get_client(settings.valkey)
        packets = load_batch(valkey, batch_key)
        if packets is None:
            log.info("%s: batch %s already ingested (redelivered message)", name, batch_key)
            return {"batch": batch_key, "redelivered": True}
        if len(packets) != count:
            log.warning(
                "%s: batch %s holds %d packets, message says %d",
                name,
                batch_key,
                len(packets),
                count,
            )
        started = time.monotonic()
        result = ingest_packets(get_db(settings.mongo), survey, packets, batch_key)
        # Sent before the batch is deleted: a crash in between redelivers the batch,
        # and every later stage is idempotent, so nothing is lost or doubled.
        times = {"received": received_at}
        rejected, keep = len(result.rejected), settings.conductor.keep_days
        record_ingested(valkey, survey.name, received_at, result.candids, rejected, keep)
        hand_on(settings, survey.name, "ingested", result.candids, times, next_stage, len(packets))
        complete_batch(valkey, survey, batch_key)
        log.info(
            "%s: batch %s: %d added, %d existing, %d quarantined in %.2fs",
            name,
            batch_key,
            len(result.added),
            len(result.existing),
            len(result.rejected),
            time.monotonic() - started,
        )
        return {
            "batch": batch_key,
            "added": len(result.added),
            "existing": len(result.existing),
            "quarantined": len(result.rejected),
            "received_at": received_at,
        }

    return ingest
