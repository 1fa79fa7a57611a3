"""The schedule's commands: typed functions that ``boom schedule`` prints (and an API could serve).

Each takes the settings, returns a dataclass and raises :class:`boom_tasks.errors.ConfigError`
(an unknown job, an invalid spec) or :class:`boom_tasks.errors.BoomError` (a job that
failed), as the filter commands do (:mod:`boom_tasks.filter.commands`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from boom_tasks.errors import BoomError, ConfigError

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from boom_tasks.settings import Settings

#: Past runs of each job that ``list_jobs`` returns, newest first.
RECENT_RUNS = 3


@dataclass(frozen=True)
class JobView:
    """One stored job as ``boom schedule list`` shows it, with its latest runs."""

    id: str
    job: str | None
    kwargs: dict[str, Any]
    trigger: str
    next_run: dt.datetime | None
    origin: str
    runs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class JobStored:
    """A job added (or replaced), with its next run time."""

    id: str
    job: str
    cron: str
    next_run: dt.datetime | None


def start_store(scheduler: BackgroundScheduler, paused: bool) -> None:
    """Start ``scheduler``; its job store's first query is made here, translated once."""
    from boom_tasks.services.mongo import mongo_errors

    with mongo_errors("opening the schedule's job store"):
        scheduler.start(paused=paused)


@contextmanager
def open_store(settings: Settings) -> Iterator[BackgroundScheduler]:
    """Yield a paused scheduler on the job store: it reads and writes jobs, runs none."""
    from boom_tasks.schedule.scheduler import build_scheduler

    scheduler = build_scheduler(settings)
    start_store(scheduler, paused=True)
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=False)


def _runs_collection(settings: Settings) -> Any:
    from boom_tasks.services.mongo import get_db

    return get_db(settings.mongo)[settings.schedule.runs_collection]


def list_jobs(settings: Settings) -> list[JobView]:
    """Return every stored job with its next run and its :data:`RECENT_RUNS` latest runs."""
    from boom_tasks.schedule import runs
    from boom_tasks.schedule.scheduler import describe

    with open_store(settings) as scheduler:
        jobs = [describe(job) for job in scheduler.get_jobs()]
    collection = _runs_collection(settings)
    return [
        JobView(**job, runs=list(runs.runs_of(collection, job["id"], limit=RECENT_RUNS)))
        for job in jobs
    ]


def add_job(settings: Settings, job_id: str, cron: str, job: str, kwargs: Any) -> JobStored:
    """Store (or replace) job ``job_id`` running ``job(**kwargs)`` at ``cron`` (UTC).

    Raises
    ------
    ConfigError
        If the spec is invalid (cron, job reference, kwargs), every problem named.
    """
    from pydantic import ValidationError

    from boom_tasks.schedule.config import ScheduledJob
    from boom_tasks.schedule.scheduler import put_job

    try:
        spec = ScheduledJob(id=job_id, cron=cron, job=job, kwargs=kwargs)
    except ValidationError as e:
        raise ConfigError("; ".join(err["msg"] for err in e.errors())) from None
    with open_store(settings) as scheduler:
        stored = put_job(scheduler, spec)
        next_run = stored.next_run_time
    return JobStored(spec.id, spec.job, spec.cron, next_run)


def remove_job(settings: Settings, job_id: str) -> None:
    """Remove job ``job_id`` (raises ConfigError if there is none)."""
    with open_store(settings) as scheduler:
        if scheduler.get_job(job_id) is None:
            raise ConfigError(f"no scheduled job {job_id!r} (see `boom schedule list`)")
        scheduler.remove_job(job_id)


def run_now(settings: Settings, job_id: str) -> str:
    """Run stored job ``job_id`` once, now, in this process; return its run's key.

    The run is recorded like a scheduled one (claimed, then done or failed).

    Raises
    ------
    ConfigError
        If there is no such job.
    BoomError
        If the job failed (its error recorded with the run).
    """
    from boom_tasks.schedule import runs
    from boom_tasks.schedule.jobs import run_reference

    with open_store(settings) as scheduler:
        job = scheduler.get_job(job_id)
    if job is None:
        raise ConfigError(f"no scheduled job {job_id!r} (see `boom schedule list`)")
    collection = _runs_collection(settings)
    when = f"manual-{dt.datetime.now(dt.UTC).isoformat(timespec='microseconds')}"
    runs.claim(collection, job.id, when, runs.owner_name())
    key = runs.run_key(job.id, when)
    try:
        run_reference(**job.kwargs)
    except Exception as e:
        # Whatever the job raised is its outcome: recorded, then reported as one line.
        runs.finish(collection, key, "failed", f"{type(e).__name__}: {e}")
        raise BoomError(f"job {job.id} failed: {type(e).__name__}: {e}") from None
    runs.finish(collection, key, "done")
    return str(key)
