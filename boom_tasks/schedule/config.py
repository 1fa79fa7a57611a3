"""Settings of ``boom-scheduler``: its jobs, its collections, how often it looks again."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from boom_tasks.config_base import Section

#: A job reference: ``package.module:function``.
JOB_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def check_job_ref(ref: str) -> str:
    """Return ``ref`` if it has the form ``module:function``; raise ValueError otherwise."""
    if not JOB_REF.match(ref):
        raise ValueError(f"job {ref!r} must be 'package.module:function'")
    return ref


def check_cron(cron: str) -> str:
    """Return ``cron`` if it is a five-field crontab expression; raise ValueError otherwise."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(cron, timezone="UTC")
    except ValueError as e:
        raise ValueError(
            f"cron {cron!r} is not 'minute hour day month day_of_week' ({e})"
        ) from None
    return cron


class ScheduledJob(Section):
    """One job of the ``schedule.jobs`` list: what runs, and when (UTC)."""

    #: Unique name of the job (its id in the job store and in ``schedule_runs``).
    id: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    #: Five-field crontab expression, in UTC: ``"30 13 * * *"`` is 13:30 UTC daily.
    cron: str
    #: The function run: ``package.module:function``, called as ``function(settings, **kwargs)``.
    job: str
    #: Keyword arguments of the function (plain YAML values).
    kwargs: dict[str, Any] = {}

    @field_validator("job")
    @classmethod
    def _job_ref(cls, value: str) -> str:
        return check_job_ref(value)

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        return check_cron(value)


#: The night conductor's job, on by default: every quarter hour it reports each night
#: that has ended (quiet for ``conductor.quiet_s``, every queue drained).
CLOSE_NIGHTS = ScheduledJob(
    id="close-nights", cron="*/15 * * * *", job="boom_tasks.conductor.jobs:close_nights"
)


class ScheduleSettings(Section):
    """``boom-scheduler``: cron jobs stored in MongoDB, run once however many schedulers run."""

    #: Jobs declared in configuration; ``boom schedule add`` adds more at run time.
    jobs: list[ScheduledJob] = Field(default_factory=lambda: [CLOSE_NIGHTS])
    #: Collection of APScheduler's job store (jobs and their next run time).
    jobs_collection: str = "schedule_jobs"
    #: Collection of claims and outcomes: one document per job run, ``_id`` = job:time.
    runs_collection: str = "schedule_runs"
    #: Seconds between two looks at the job store, so jobs another process added
    #: (``boom schedule add``, another scheduler) are seen without a restart.
    poll_s: float = Field(5.0, gt=0)
    #: Seconds past its time a run still happens (a scheduler down at the time runs
    #: it when it comes back within this bound; later, that run is skipped).
    misfire_grace_s: int = Field(3600, ge=1)
    #: Jobs run at once by one scheduler (threads).
    max_workers: int = Field(4, ge=1)

    @field_validator("jobs")
    @classmethod
    def _unique_ids(cls, jobs: list[ScheduledJob]) -> list[ScheduledJob]:
        ids = [j.id for j in jobs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"schedule.jobs ids must be unique; repeated: {dupes}")
        return jobs
