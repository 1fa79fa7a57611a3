"""The ingest actor of each survey: a batch key in, candids out to the next stage."""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq

from boom_tasks.actors.crossmatch import CROSSMATCH
from boom_tasks.actors.messages import check_version, hand_on
from boom_tasks.batches import complete_batch, load_batch
from boom_tasks.broker import actor_options
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.services.mongo import get_db
from boom_tasks.services.valkey import get_client
from boom_tasks.settings import get_settings
from boom_tasks.surveys import SURVEYS, Survey

log = logging.getLogger(__name__)


def make_ingest_actor(survey: Survey) -> dramatiq.Actor:
    """Declare the ``<survey>_ingest`` actor on its own queue, so surveys scale apart."""
    name = f"{survey.queue_prefix}_ingest"
    next_stage = CROSSMATCH[survey.name]
    options: dict[str, Any] = actor_options(get_settings().worker)

    @dramatiq.actor(actor_name=name, queue_name=name, **options)
    def ingest(batch_key: str, count: int, received_at: float, version: int = 1) -> dict[str, Any]:
        check_version(name, version)
        settings = get_settings()
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
        hand_on(survey.name, "ingested", result.candids, times, next_stage, count=len(packets))
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


#: The ingest actor of every registered survey, by survey name.
INGEST: dict[str, dramatiq.Actor] = {name: make_ingest_actor(s) for name, s in SURVEYS.items()}
