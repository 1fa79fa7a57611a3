"""The replay actor of a survey: one slice of a replay, on its own low-priority queue.

It lives on ``<survey>_replay`` (never on a live stage's queue), with a higher
``priority`` number than the live stages, so a worker that holds both runs the
live message first; its result goes to the result backend, where the runner
learns that the slice is done.
"""

from __future__ import annotations

from typing import Any

import dramatiq

from boom_tasks.broker import actor_options, queue_name
from boom_tasks.messages import check_version
from boom_tasks.output.provenance import stack_provenance
from boom_tasks.output.publish import get_producer
from boom_tasks.replays.work import Slice, run_slice
from boom_tasks.services.mongo import get_db
from boom_tasks.settings import Settings
from boom_tasks.surveys.base import Survey


def declare(broker: dramatiq.Broker, survey: Survey, settings: Settings) -> dramatiq.Actor:
    """Declare the ``<survey>_replay`` actor on ``broker``."""
    name = queue_name(survey, "replay")
    options = {**actor_options(settings.worker), "priority": settings.replays.priority}

    @dramatiq.actor(broker=broker, actor_name=name, queue_name=name, **options)
    def replay_slice(
        run_id: str,
        kind: str,
        filter_id: str,
        fid: str | None,
        topic: str,
        candids: list[int],
        version: int = 1,
        batch_key: str | None = None,
    ) -> dict[str, Any]:
        check_version(name, version)
        order = Slice(run_id, kind, filter_id, fid, topic, candids, batch_key)
        db = get_db(settings.mongo)
        producer = get_producer(settings.kafka)
        return run_slice(db, survey, settings, order, producer, stack_provenance(settings, survey))

    return replay_slice


def declare_replays(
    broker: dramatiq.Broker, surveys: list[Survey], settings: Settings
) -> dict[str, dramatiq.Actor]:
    """Declare the replay actor of every survey; return them by survey name."""
    return {survey.name: declare(broker, survey, settings) for survey in surveys}
