"""The scheduler: APScheduler 3 with cron triggers, its jobs stored in MongoDB.

Step 1: build a scheduler whose job store is a MongoDB collection (our pymongo
        client, ``schedule.jobs_collection``): jobs and their next run time
        survive a restart, and a run missed while no scheduler was up happens
        when one comes back (within ``schedule.misfire_grace_s``, once).
Step 2: its executor claims each run in ``schedule_runs`` before running it
        (:mod:`.runs`), so two schedulers on one database run a job once.
Step 3: the jobs of ``schedule.jobs`` are written to the store at start; jobs
        added at run time (``boom schedule add``) live beside them.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from pymongo.collection import Collection

from boom_tasks.errors import BoomError
from boom_tasks.schedule import runs
from boom_tasks.schedule.config import ScheduledJob
from boom_tasks.schedule.jobs import RUNNER_REF, check_call
from boom_tasks.services.mongo import get_client, get_db
from boom_tasks.settings import Settings

log = logging.getLogger(__name__)

#: ``Job.name`` of jobs written from ``schedule.jobs``; a config job that is no longer
#: in the configuration is removed at start, a run-time job is left alone.
FROM_CONFIG = "config"
#: ``Job.name`` of jobs added at run time.
FROM_CLI = "runtime"


class ClaimingExecutor(ThreadPoolExecutor):
    """A thread pool that runs a job only after winning its claim in ``schedule_runs``."""

    def __init__(self, runs_collection: Collection, owner: str, max_workers: int) -> None:
        super().__init__(max_workers)
        self.runs, self.owner = runs_collection, owner

    def submit_job(self, job: Job, run_times: list[dt.datetime]) -> None:
        """Claim the latest of ``run_times`` and run the job if the claim is ours."""
        # Coalesced: the scheduler hands one run time; claim the latest in any case.
        scheduled = run_times[-1]
        if self._instances[job.id] >= job.max_instances:
            # Still running its previous run: claim nothing, the scheduler logs the skip.
            raise MaxInstancesReachedError(job)
        try:
            won = runs.claim(self.runs, job.id, scheduled, self.owner)
        except BoomError as e:
            # Not claimed, not run: the scheduler moves on to the next fire time.
            log.error("schedule: cannot claim %s at %s (%s); skipped", job.id, scheduled, e)
            return
        if not won:
            log.info("schedule: %s at %s already claimed by another scheduler", job.id, scheduled)
            return
        super().submit_job(job, [scheduled])


def trigger(cron: str) -> CronTrigger:
    """Return the UTC cron trigger of a five-field crontab expression."""
    return CronTrigger.from_crontab(cron, timezone=dt.UTC)


def _job_store(**options: Any) -> Any:
    """Return APScheduler's MongoDB job store, leaving the process's client open at shutdown."""
    from apscheduler.jobstores.mongodb import MongoDBJobStore

    class SharedClientJobStore(MongoDBJobStore):
        def shutdown(self) -> None:
            # The client is the process's own (services/mongo.py): others still use it.
            pass

    return SharedClientJobStore(**options)


def build_scheduler(settings: Settings) -> BackgroundScheduler:
    """Return a stopped scheduler on the MongoDB job store, recording runs and outcomes."""
    config = settings.schedule
    store = _job_store(
        database=settings.mongo.database,
        collection=config.jobs_collection,
        client=get_client(settings.mongo),
    )
    runs_collection = get_db(settings.mongo)[config.runs_collection]
    executor = ClaimingExecutor(runs_collection, runs.owner_name(), config.max_workers)
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        executors={"default": executor},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": config.misfire_grace_s,
        },
        timezone=dt.UTC,
    )

    def record(event: JobExecutionEvent) -> None:
        key = runs.run_key(event.job_id, event.scheduled_run_time)
        state = {EVENT_JOB_EXECUTED: "done", EVENT_JOB_ERROR: "failed"}.get(event.code, "missed")
        if event.exception is not None:
            log.error("schedule: %s failed: %s", key, event.exception)
        try:
            runs.finish(runs_collection, key, state, _error_text(event.exception))
        except BoomError as e:
            log.error("schedule: cannot record the end of %s (%s)", key, e)

    scheduler.add_listener(record, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler


def _error_text(exc: BaseException | None) -> str | None:
    return None if exc is None else f"{type(exc).__name__}: {exc}"


def put_job(scheduler: BackgroundScheduler, spec: ScheduledJob, origin: str = FROM_CLI) -> Job:
    """Store ``spec`` in the scheduler's job store, replacing a job of the same id.

    Raises
    ------
    ConfigError
        If the job's function cannot be found: a typo is refused when added,
        not discovered at 3 a.m.
    """
    check_call(spec.job, dict(spec.kwargs))
    return scheduler.add_job(
        RUNNER_REF,
        trigger=trigger(spec.cron),
        id=spec.id,
        name=origin,
        kwargs={"ref": spec.job, "kwargs": dict(spec.kwargs)},
        replace_existing=True,
    )


def same_job(job: Job, spec: ScheduledJob) -> bool:
    """Tell whether a stored job is ``spec`` unchanged (same trigger, function, arguments)."""
    wanted = {"ref": spec.job, "kwargs": dict(spec.kwargs)}
    return str(job.trigger) == str(trigger(spec.cron)) and dict(job.kwargs) == wanted


def sync_config_jobs(scheduler: BackgroundScheduler, specs: list[ScheduledJob]) -> None:
    """Write the configured jobs to the store, keeping the pending run of unchanged ones.

    An unchanged job keeps its stored next run time, so a run that fell due
    while no scheduler was up is not lost by rewriting the job; a changed one
    is replaced; a config job no longer configured is removed.
    """
    wanted = {spec.id: spec for spec in specs}
    for job in scheduler.get_jobs():
        if job.name == FROM_CONFIG and job.id not in wanted:
            log.info("schedule: %s is no longer configured; removed", job.id)
            scheduler.remove_job(job.id)
    for spec in specs:
        stored = scheduler.get_job(spec.id)
        if stored is None or not same_job(stored, spec):
            put_job(scheduler, spec, FROM_CONFIG)
            log.info("schedule: %s (%s) stored, cron %r", spec.id, spec.job, spec.cron)


def describe(job: Job) -> dict[str, Any]:
    """Return what ``boom schedule list`` shows of one stored job."""
    return {
        "id": job.id,
        "job": job.kwargs.get("ref"),
        "kwargs": job.kwargs.get("kwargs") or {},
        "trigger": str(job.trigger),
        "next_run": job.next_run_time,
        "origin": job.name,
    }
