"""The pipeline, declared once, in order: ingest → crossmatch → ml → science → filter → output.

Each stage's actor lives beside the stage's code (``boom_tasks/<stage>/actor.py``)
and is declared with ``declare(broker, survey, settings, next_stage)`` on the broker it is given and
on the survey's own queue (``<survey>_<stage>``), so surveys scale apart and
nothing depends on import order. :func:`declare_chain` declares every stage of
each survey, last first, so each actor is handed the next one to send to. A stage
whose ``declare`` returns None (science, for a survey without science actors) is
not part of that survey's chain: the stage before it sends to the one after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.results import Results
from dramatiq.results.backends import StubBackend

from boom_tasks.crossmatch import actor as crossmatch
from boom_tasks.filter import actor as filter_
from boom_tasks.ingest import actor as ingest
from boom_tasks.ml import actor as ml
from boom_tasks.output import actor as output
from boom_tasks.science import actor as science
from boom_tasks.settings import Settings
from boom_tasks.surveys.base import Survey

#: ``declare(broker, survey, settings, next_stage) -> actor`` of one stage (None: skipped).
Declare = Callable[
    [dramatiq.Broker, Survey, Settings, dramatiq.Actor | None], dramatiq.Actor | None
]


@dataclass(frozen=True)
class Stage:
    """One stage of the chain: its name (the queue suffix) and how to declare its actor."""

    name: str
    declare: Declare


#: The chain, in the order an alert goes through it.
CHAIN: tuple[Stage, ...] = (
    Stage("ingest", ingest.declare),
    Stage("crossmatch", crossmatch.declare),
    Stage("ml", ml.declare),
    Stage("science", science.declare),
    Stage("filter", filter_.declare),
    Stage("output", output.declare),
)


def declare_chain(
    broker: dramatiq.Broker, surveys: Iterable[Survey], settings: Settings
) -> dict[str, dict[str, dramatiq.Actor]]:
    """Declare every stage's actor of each survey on ``broker``.

    Parameters
    ----------
    broker
        The broker the actors are declared on (Valkey in workers, ``StubBroker``
        in wiring tests).
    surveys
        The surveys to run.
    settings
        This process's settings, read once at process start.

    Returns
    -------
    dict
        ``{survey name: {stage name: actor}}``, stages in :data:`CHAIN` order, the
        skipped ones left out.
    """
    declared: dict[str, dict[str, dramatiq.Actor]] = {}
    for survey in surveys:
        actors: dict[str, dramatiq.Actor] = {}
        next_stage: dramatiq.Actor | None = None
        for stage in reversed(CHAIN):
            actor = stage.declare(broker, survey, settings, next_stage)
            if actor is not None:
                next_stage = actors[stage.name] = actor
        declared[survey.name] = {s.name: actors[s.name] for s in CHAIN if s.name in actors}
    return declared


def declared_queues(surveys: Iterable[Survey], settings: Settings) -> dict[str, list[str]]:
    """Return each stage's queues, in chain order, as :func:`declare_chain` declares them.

    The chain is declared on a throw-away ``StubBroker``, so a stage a survey skips
    (science, for a survey without science actors) has no queue here. Deployment
    manifests (``ops/k8s/workers.py``, docker-compose) are checked against it.

    Parameters
    ----------
    surveys
        The surveys to run.
    settings
        The settings the workers will run with (they decide the science actors).

    Returns
    -------
    dict
        ``{stage name: [queue, ...]}``, a survey's queue in survey order.
    """
    broker = StubBroker()
    broker.add_middleware(Results(backend=StubBackend()))
    declared = declare_chain(broker, surveys, settings)
    return {
        stage.name: [
            actors[stage.name].queue_name for actors in declared.values() if stage.name in actors
        ]
        for stage in CHAIN
    }
