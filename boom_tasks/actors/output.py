"""The output actor of each survey: passing alerts published to Kafka, once."""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq

from boom_tasks.actors.messages import check_version, hand_on
from boom_tasks.broker import actor_options
from boom_tasks.output.publish import get_producer, publish_batch
from boom_tasks.services.mongo import get_db
from boom_tasks.settings import get_settings
from boom_tasks.surveys import SURVEYS, Survey

log = logging.getLogger(__name__)


def make_output_actor(survey: Survey) -> dramatiq.Actor:
    """Declare the ``<survey>_output`` actor on its own queue (the last stage)."""
    name = f"{survey.queue_prefix}_output"

    @dramatiq.actor(actor_name=name, queue_name=name, **actor_options(get_settings().worker))
    def output(candids: list[int], times: dict[str, float], version: int = 1) -> dict[str, Any]:
        check_version(name, version)
        settings = get_settings()
        started = time.monotonic()
        producer = get_producer(settings.kafka)
        sent = publish_batch(
            get_db(settings.mongo), survey, producer, candids, times, settings.output
        )
        hand_on(survey.name, "published", candids, times, None)
        log.info(
            "%s: %d alerts, %d published in %.2fs",
            name,
            len(candids),
            sent,
            time.monotonic() - started,
        )
        return {"alerts": len(candids), "published": sent}

    return output


#: The output actor of every registered survey, by survey name.
OUTPUT: dict[str, dramatiq.Actor] = {name: make_output_actor(s) for name, s in SURVEYS.items()}
