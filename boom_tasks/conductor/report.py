"""The night report of one survey and night: counts that must add up, and why not.

Step 1: read the night's per-stage records from Valkey (one round trip).
Step 2: add them up; follow each batch stage by stage (:mod:`.tally`).
Step 3: if anything does not add up, find where the missing alerts are: in which
        stage queue, waiting or dead, with their candids (:mod:`.whereabouts`).
Step 4: latency percentiles per stage and the night's peak rate.
The report is a plain dict: stored as is in ``<SURVEY>_nights`` (``_id`` = night),
shown by ``boom night report`` and the dashboard.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

from pymongo.database import Database

from boom_tasks.conductor import tally
from boom_tasks.conductor.counters import STAGES, read_night
from boom_tasks.conductor.whereabouts import locate, night_dead_letters, queued_by_receipt
from boom_tasks.errors import BoomError
from boom_tasks.services.mongo import get_db, mongo_errors
from boom_tasks.services.valkey import get_client, valkey_errors
from boom_tasks.settings import Settings
from boom_tasks.surveys import Survey

#: Version of the report document; bump it when a field changes meaning.
REPORT_VERSION = 1


class NoNightData(BoomError):
    """Nothing is known of this night: no batch was recorded and no report stored."""


def nights_collection(survey: Survey) -> str:
    """Return the collection of ``survey``'s night reports (``<SURVEY>_nights``)."""
    return f"{survey.collection_prefix}{survey.name}_nights"


def build_report(settings: Settings, survey: Survey, night: str) -> dict[str, Any]:
    """Build the report of ``night`` from the per-night records (see the module docstring).

    Raises
    ------
    NoNightData
        If no batch of the night was recorded (never consumed, or its records expired).
    TransientError
        If Valkey cannot be reached.
    """
    valkey = get_client(settings.valkey)
    with valkey_errors(f"reading the {survey.name} night {night}"):
        records = read_night(valkey, survey.name, night)
        if not records["received"].handled:
            raise NoNightData(f"no {survey.name} alert was recorded for night {night}")
        t = tally.totals(records)
        gaps = tally.gaps(records)
        index = queued_by_receipt(valkey, survey.queue_prefix)
        stops = locate(
            valkey,
            survey.name,
            survey.queue_prefix,
            night,
            gaps,
            index,
            settings.conductor.named_candids,
        )
    problems = tally.problems(t, gaps)
    rate, peak_at = tally.peak_rate(records["received"])
    last = [r.last_at for r in records.values() if r.last_at is not None]
    return {
        "_id": night,
        "version": REPORT_VERSION,
        "survey": survey.name,
        "night": night,
        "flagged": bool(problems),
        "problems": problems,
        "counts": dataclasses.asdict(t),
        "kafka": {tp: list(span) for tp, span in sorted(records["received"].offsets.items())},
        "stopped": [dataclasses.asdict(s) for s in stops],
        "dead_letters": night_dead_letters(index, records["received"].handled),
        "latency_s": tally.latencies(records),
        "peak_rate": {"alerts_per_s": rate, "minute": peak_at},
        "last_activity": max(last) if last else None,
        "batches": len(records["received"].handled),
        "written_at": dt.datetime.now(dt.UTC),
    }


def store_report(db: Database, survey: Survey, report: dict[str, Any]) -> None:
    """Write (or replace) the night's report in ``<SURVEY>_nights``: idempotent by night."""
    with mongo_errors(f"writing the {survey.name} night report {report['_id']}"):
        db[nights_collection(survey)].replace_one({"_id": report["_id"]}, report, upsert=True)


def stored_report(db: Database, survey: Survey, night: str) -> dict[str, Any] | None:
    """Return the stored report of ``night``, or None."""
    with mongo_errors(f"reading the {survey.name} night report {night}"):
        return db[nights_collection(survey)].find_one({"_id": night})


def recent_reports(db: Database, survey: Survey, limit: int) -> list[dict[str, Any]]:
    """Return the last ``limit`` stored reports of ``survey``, latest night first."""
    with mongo_errors(f"reading the {survey.name} night reports"):
        return list(db[nights_collection(survey)].find().sort("_id", -1).limit(limit))


def report_night(settings: Settings, survey: Survey, night: str) -> dict[str, Any]:
    """Return the night's report: rebuilt from Valkey if its records remain, else as stored.

    Raises
    ------
    NoNightData
        If neither the records nor a stored report exist.
    """
    try:
        return build_report(settings, survey, night)
    except NoNightData:
        stored = stored_report(get_db(settings.mongo), survey, night)
        if stored is None:
            raise NoNightData(
                f"no report and no record of {survey.name} night {night}: was it consumed "
                f"(boom-bridge {survey.name} --date {night}) in the last "
                f"{settings.conductor.keep_days} days?"
            ) from None
        return stored


def idle_for(report: dict[str, Any], now: float | None = None) -> float:
    """Return seconds since any stage last finished a batch of the report's night."""
    now = time.time() if now is None else now
    last = report.get("last_activity")
    return float("inf") if last is None else now - float(last)


__all__ = [
    "STAGES",
    "NoNightData",
    "build_report",
    "idle_for",
    "nights_collection",
    "recent_reports",
    "report_night",
    "store_report",
    "stored_report",
]
