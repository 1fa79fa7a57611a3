"""The Dramatiq queues the workers declare, as the monitor lists them.

Derived from the declarations themselves, never a hand-written list: each survey's
stages in :data:`boom_tasks.chain.CHAIN` order (``<survey>_<stage>``; science is
listed even for a survey with no science actor, so its dead letters stay in sight
if actors are disabled), then the survey's replay queue, as
:func:`boom_tasks.replays.actor.declare_replays` declares it.
"""

from __future__ import annotations

from collections.abc import Iterable

from dramatiq.brokers.stub import StubBroker
from dramatiq.results import Results
from dramatiq.results.backends import StubBackend

from boom_tasks.broker import queue_name
from boom_tasks.chain import CHAIN
from boom_tasks.replays.actor import declare_replays
from boom_tasks.settings import Settings
from boom_tasks.surveys.base import Survey


def chain_queues(survey: Survey) -> list[str]:
    """Return the survey's stage queues, in chain order."""
    return [queue_name(survey, stage.name) for stage in CHAIN]


def replay_queues(surveys: Iterable[Survey], settings: Settings) -> dict[str, str]:
    """Return each survey's replay queue, by survey name (declared on a throw-away broker)."""
    broker = StubBroker()
    broker.add_middleware(Results(backend=StubBackend()))
    actors = declare_replays(broker, list(surveys), settings)
    return {name: actor.queue_name for name, actor in actors.items()}


def pipeline_queues(surveys: Iterable[Survey], settings: Settings) -> list[str]:
    """Return every queue of the surveys: each one's chain stages in order, then its replays.

    Parameters
    ----------
    surveys
        The surveys the workers run.
    settings
        The settings the workers run with.

    Returns
    -------
    list of str
        ``[ztf_ingest, ..., ztf_output, ztf_replay, lsst_ingest, ...]``.
    """
    surveys = list(surveys)
    replays = replay_queues(surveys, settings)
    return [q for s in surveys for q in (*chain_queues(s), replays[s.name])]
