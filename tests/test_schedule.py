"""boom-scheduler against real MongoDB: runs on time, survives a restart, runs once with two."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from boom_tasks.errors import ConfigError
from boom_tasks.schedule import runs
from boom_tasks.schedule.cli import serve
from boom_tasks.schedule.config import ScheduledJob, ScheduleSettings
from boom_tasks.schedule.jobs import resolve
from tests.scheduled import MARKS

ROOT = Path(__file__).resolve().parent.parent


def _cron_in(seconds: float) -> tuple[str, dt.datetime]:
    """Return the crontab of the first whole minute at least ``seconds`` from now, and it."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    at = at.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return f"{at.minute} {at.hour} * * *", at


def _wait_until(when: dt.datetime, extra_s: float = 0.0) -> None:
    delay = (when - dt.datetime.now(dt.UTC)).total_seconds() + extra_s
    if delay > 0:
        time.sleep(delay)


def _marks(db, label: str) -> list[dict]:
    return list(db[MARKS].find({"label": label}))


def _settings_with(settings, jobs: list[ScheduledJob]):
    schedule = ScheduleSettings(jobs=jobs, poll_s=0.5)
    return settings.model_copy(update={"schedule": schedule})


def test_job_config_is_validated() -> None:
    with pytest.raises(ValueError, match="module:function"):
        ScheduledJob(id="x", cron="* * * * *", job="no_colon")
    with pytest.raises(ValueError, match="minute hour"):
        ScheduledJob(id="x", cron="every day", job="a:b")
    with pytest.raises(ValueError, match="unique"):
        ScheduleSettings(jobs=[{"id": "a", "cron": "0 0 * * *", "job": "a:b"}] * 2)
    with pytest.raises(ConfigError, match="cannot import"):
        resolve("boom_tasks.no_such_module:f")
    with pytest.raises(ConfigError, match="no function"):
        resolve("tests.scheduled:nope")


def _scheduler_thread(settings):
    """Run ``serve`` (what boom-scheduler runs) in a thread; return its thread and stop event."""
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(stop, settings))
    thread.start()
    return thread, stop


@pytest.mark.services
def test_two_schedulers_on_one_database_run_a_job_once(services, mongo_db, unique) -> None:
    # Given two schedulers sharing the job store, both configured with one job a minute ahead
    cron, at = _cron_in(3)
    job = ScheduledJob(
        id=f"twice-{unique}", cron=cron, job="tests.scheduled:mark", kwargs={"label": unique}
    )
    settings = _settings_with(services, [job])
    first, stop1 = _scheduler_thread(settings)
    second, stop2 = _scheduler_thread(settings)
    try:
        # When the time comes and both find it due
        _wait_until(at, 4.0)
    finally:
        for thread, stop in ((first, stop1), (second, stop2)):
            stop.set()
            thread.join(timeout=30)
    # Then it ran exactly once, and its run is recorded done under one claim
    assert len(_marks(mongo_db, unique)) == 1
    recorded = list(mongo_db["schedule_runs"].find({"job_id": job.id}))
    assert [r["state"] for r in recorded] == ["done"]
    assert recorded[0]["_id"] == runs.run_key(job.id, at)


def _start_process(env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from boom_tasks.schedule.cli import main; main()"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env)


def _stop_process(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


@pytest.mark.services
def test_scheduler_process_runs_on_time_and_a_restart_neither_loses_nor_doubles(
    services, mongo_db, unique
) -> None:
    env = {**os.environ, "BOOM_SCHEDULE__POLL_S": "0.5"}
    # Given a job added at run time (boom schedule add) for the coming minute
    cron, at = _cron_in(3)
    job_id = f"restart-{unique}"
    add = [
        sys.executable,
        "-c",
        "from boom_tasks.cli import main; main()",
        "schedule",
        "add",
        job_id,
        "--cron",
        cron,
        "--job",
        "tests.scheduled:mark",
        "--kwargs",
        f'{{"label": "{unique}"}}',
    ]
    subprocess.run(add, cwd=ROOT, env=env, check=True)
    # When a boom-scheduler process runs over that minute
    proc = _start_process(env)
    try:
        _wait_until(at, 4.0)
    finally:
        _stop_process(proc)
    # Then the job ran once, at its time
    marks = _marks(mongo_db, unique)
    assert len(marks) == 1
    assert marks[0]["at"].replace(tzinfo=dt.UTC) >= at
    # Given the job is next due one day later; a restarted scheduler must not run it again
    proc = _start_process(env)
    time.sleep(4.0)
    _stop_process(proc)
    assert len(_marks(mongo_db, unique)) == 1

    # Given a second job that falls due while no scheduler is up
    cron2, at2 = _cron_in(1)
    missed_id = f"missed-{unique}"
    add[5], add[7], add[11] = missed_id, cron2, f'{{"label": "{unique}-missed"}}'
    subprocess.run(add, cwd=ROOT, env=env, check=True)
    _wait_until(at2, 1.0)
    assert _marks(mongo_db, f"{unique}-missed") == []
    # When a scheduler starts after its time (within the misfire grace)
    proc = _start_process(env)
    time.sleep(5.0)
    _stop_process(proc)
    # Then the missed run happens, once
    assert len(_marks(mongo_db, f"{unique}-missed")) == 1
    states = [r["state"] for r in mongo_db["schedule_runs"].find({"job_id": missed_id})]
    assert states == ["done"]
