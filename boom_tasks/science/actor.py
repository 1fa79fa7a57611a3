"""The science actor of a survey: its enabled science actors on a batch, then the filters.

Declared only for a survey that has an enabled science actor: for the others
:func:`declare` returns None and the chain hands the ML stage's batches straight
to the filters (:func:`boom_tasks.chain.declare_chain`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import dramatiq

from boom_tasks.broker import queue_name, stage_actor
from boom_tasks.messages import check_version, hand_on
from boom_tasks.output.publish import get_producer
from boom_tasks.science.base import ScienceActor
from boom_tasks.science.loader import prepare, survey_actors
from boom_tasks.science.publish import publish
from boom_tasks.science.stage import Publisher, run_science
from boom_tasks.services.kafka import ensure_topic
from boom_tasks.services.mongo import get_db
from boom_tasks.settings import Settings
from boom_tasks.surveys.base import Survey

log = logging.getLogger(__name__)

#: Output topics this process has made sure exist.
_topics: set[str] = set()


def kafka_publisher(settings: Settings) -> Publisher:
    """Return a publisher on this process's Kafka producer (topics created on first use)."""

    def send(topic: str, documents: Mapping[int, dict[str, Any]]) -> int:
        if topic not in _topics:
            ensure_topic(settings.kafka, topic)
            _topics.add(topic)
        return publish(get_producer(settings.kafka), topic, documents)

    return send


def prepare_all(actors: list[ScienceActor]) -> None:
    """Run every actor's ``setup`` in this process (a worker calls it after fork)."""
    for actor in actors:
        prepare(actor)


def declare(
    broker: dramatiq.Broker,
    survey: Survey,
    settings: Settings,
    next_stage: dramatiq.Actor | None,
) -> dramatiq.Actor | None:
    """Declare the ``<survey>_science`` actor, or return None if no science actor is enabled.

    Raises
    ------
    ConfigError
        If a configured actor module cannot be loaded.
    """
    actors = survey_actors(settings.science.actors, survey.name)
    if not actors:
        return None
    name = queue_name(survey, "science")
    publisher = kafka_publisher(settings)

    @stage_actor(broker, name, settings.worker)
    def science(candids: list[int], times: dict[str, float], version: int = 1) -> dict[str, Any]:
        check_version(name, version)
        db = get_db(settings.mongo)
        outcomes = run_science(db, survey, actors, candids, settings.science, publisher)
        for o in outcomes:
            log.info(
                "%s: %s selected %d, %d results, %d published in %.2fs%s",
                name,
                o.name,
                o.selected,
                o.results,
                o.published,
                o.seconds,
                f" (failed: {o.error})"
                if o.error
                else f" (skipped: {o.skipped})"
                if o.skipped
                else "",
            )
        # Every candid goes on: filters run whatever the actors did.
        hand_on(settings, survey.name, "science", candids, times, next_stage, stamped=False)
        return {"alerts": len(candids), "results": {o.name: o.results for o in outcomes}}

    return science
