"""Everything the dashboard shows, gathered in one pass over Valkey, MongoDB and Kafka.

Each section is read on its own: a server that does not answer leaves its section
with an error message, and the rest of the page is still shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
from pymongo.database import Database

from boom_tasks.bridge.consumer import bridge_group
from boom_tasks.broker import NAMESPACE
from boom_tasks.conductor.report import recent_reports
from boom_tasks.dashboard.nights import NIGHTS_SHOWN
from boom_tasks.dashboard.replays import REPLAYS_SHOWN, runs_by_state
from boom_tasks.errors import BoomError
from boom_tasks.filter.store import FILTERS
from boom_tasks.monitor.lag import consumer_lag
from boom_tasks.monitor.pipeline import pipeline_queues
from boom_tasks.monitor.quarantine import recent_quarantine
from boom_tasks.monitor.queues import queue_counts
from boom_tasks.monitor.stats import passes_per_hour, stage_figures
from boom_tasks.replays.store import list_runs
from boom_tasks.services.mongo import mongo_errors
from boom_tasks.services.valkey import valkey_errors
from boom_tasks.settings import Settings
from boom_tasks.surveys import SURVEYS, Survey

T = TypeVar("T")

#: Milliseconds without a heartbeat after which Dramatiq counts a worker as gone.
HEARTBEAT_TIMEOUT_MS = 60_000


@dataclass
class Section:
    """A part of the page: its value, or why it could not be read."""

    value: Any = None
    error: str | None = None


def read(what: str, get: Callable[[], T]) -> Section:
    """Call ``get`` (``what`` it reads, for the message); a failure becomes the section's error.

    Driver errors are translated first (:func:`valkey_errors`, :func:`mongo_errors`).
    """
    try:
        with valkey_errors(what), mongo_errors(what):
            return Section(get())
    except BoomError as e:
        return Section(error=str(e))


@dataclass
class SurveyOverview:
    """One survey's figures."""

    survey: str
    stages: Section  # list[StageFigures]
    lag: Section  # list[PartitionLag]
    quarantine: Section  # tuple[int, list[Quarantined]]
    passes: Section  # list[(hour start, {filter id: n})]
    #: The night conductor's last reports (list of report documents).
    nights: Section = field(default_factory=Section)


@dataclass
class Overview:
    """The whole page."""

    at: float
    window_minutes: int
    queues: Section  # list[QueueCounts]
    workers: Section  # int
    surveys: list[SurveyOverview] = field(default_factory=list)
    filter_names: dict[str, str] = field(default_factory=dict)
    #: The latest replay runs (list of run documents), newest first.
    replays: Section = field(default_factory=Section)
    #: Replay runs per (survey, kind, state), for ``/metrics``.
    replay_states: Section = field(default_factory=Section)


def live_workers(valkey: redis.Redis, now: float) -> int:
    """Return the number of Dramatiq worker threads that sent a heartbeat lately."""
    since = now * 1000 - HEARTBEAT_TIMEOUT_MS
    return int(valkey.zcount(f"{NAMESPACE}:__heartbeats__", since, "+inf"))


def _filter_names(db: Database) -> dict[str, str]:
    return {str(d["_id"]): d.get("name", "?") for d in db[FILTERS].find({}, {"name": 1})}


def _survey(
    settings: Settings, valkey: redis.Redis, db: Database, survey: Survey, now: float
) -> SurveyOverview:
    dash = settings.dashboard
    return SurveyOverview(
        survey=survey.name,
        stages=read(
            "reading stage figures",
            lambda: stage_figures(valkey, survey.name, dash.window_minutes, now=now),
        ),
        lag=read(
            "reading consumer lag",
            lambda: consumer_lag(settings.kafka, bridge_group(settings.kafka, survey)),
        ),
        quarantine=read("reading quarantine", lambda: recent_quarantine(db, survey, dash.listed)),
        passes=read(
            "reading filter passes",
            lambda: passes_per_hour(valkey, survey.name, dash.pass_hours, now=now),
        ),
        nights=read("reading night reports", lambda: recent_reports(db, survey, NIGHTS_SHOWN)),
    )


def gather(
    settings: Settings,
    valkey: redis.Redis,
    db: Database,
    now: float | None = None,
    queues: list[str] | None = None,
) -> Overview:
    """Return every figure of the dashboard, now (``queues``: default, every declared one)."""
    now = time.time() if now is None else now
    if queues is None:
        queues = pipeline_queues(SURVEYS.values(), settings)
    names = read("reading filter names", lambda: _filter_names(db))
    return Overview(
        at=now,
        window_minutes=settings.dashboard.window_minutes,
        queues=read("reading queues", lambda: queue_counts(valkey, queues)),
        workers=read("reading worker heartbeats", lambda: live_workers(valkey, now)),
        surveys=[_survey(settings, valkey, db, s, now) for s in SURVEYS.values()],
        filter_names=names.value or {},
        replays=read("reading replay runs", lambda: list_runs(db, settings, REPLAYS_SHOWN)),
        replay_states=read("counting replay runs", lambda: runs_by_state(db, settings)),
    )
