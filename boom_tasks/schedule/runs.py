"""One document per job run in ``schedule_runs``: the claim, then the outcome.

Step 1: before a run, a scheduler inserts ``{_id: "<job id>:<scheduled time>"}``.
        The unique ``_id`` makes it a claim: APScheduler 3 does not coordinate two
        schedulers sharing a job store, so both may find the same job due; only
        the one whose insert succeeds runs it.
Step 2: when the run ends, its state becomes ``done``, ``failed`` (with the
        error) or ``missed`` (found too late, past ``schedule.misfire_grace_s``).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import Any

from pymongo.collection import Collection

from boom_tasks.services.claims import insert_once
from boom_tasks.services.mongo import mongo_errors


def owner_name() -> str:
    """Return who claims: ``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_key(job_id: str, scheduled: dt.datetime | str) -> str:
    """Return the claim key of one run: the job id and its scheduled time in UTC, to the second.

    Every scheduler computes the same key for the same run, whatever its time zone.
    """
    when = scheduled if isinstance(scheduled, str) else _utc_text(scheduled)
    return f"{job_id}:{when}"


def _utc_text(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def claim(runs: Collection, job_id: str, scheduled: dt.datetime | str, owner: str) -> bool:
    """Claim one run of ``job_id``; return whether this process won it.

    Raises
    ------
    ServiceUnavailable, PermanentError
        If MongoDB cannot record the claim (the run is not made).
    """
    doc = {
        "_id": run_key(job_id, scheduled),
        "job_id": job_id,
        "scheduled_for": scheduled if isinstance(scheduled, str) else _utc_text(scheduled),
        "owner": owner,
        "state": "running",
        "claimed_at": dt.datetime.now(dt.UTC),
    }
    return insert_once(runs, doc, f"run {doc['_id']}")


def finish(runs: Collection, key: str, state: str, error: str | None = None) -> None:
    """Record how the run ``key`` ended: ``done``, ``failed`` or ``missed``."""
    update: dict[str, Any] = {"state": state, "finished_at": dt.datetime.now(dt.UTC)}
    if error:
        update["error"] = error
    with mongo_errors(f"recording the end of run {key}"):
        runs.update_one({"_id": key}, {"$set": update})


def runs_of(runs: Collection, job_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """Return the last ``limit`` runs of ``job_id``, newest first."""
    with mongo_errors(f"reading the runs of {job_id}"):
        return list(runs.find({"job_id": job_id}).sort("claimed_at", -1).limit(limit))
