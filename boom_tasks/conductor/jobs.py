"""Jobs of the night conductor, for the scheduler (``module:function`` references)."""

from __future__ import annotations

import logging
import time
from typing import Any

from boom_tasks.batches import pending_alerts
from boom_tasks.conductor.counters import nights_seen
from boom_tasks.conductor.render import format_report
from boom_tasks.conductor.report import build_report, idle_for, store_report, stored_report
from boom_tasks.errors import BoomError
from boom_tasks.night import queued_messages
from boom_tasks.services.mongo import get_db
from boom_tasks.services.valkey import get_client, valkey_errors
from boom_tasks.settings import Settings, get_settings
from boom_tasks.surveys import SURVEYS, Survey

log = logging.getLogger(__name__)


def drained(settings: Settings, survey: Survey) -> bool:
    """Tell whether no batch awaits ingestion and no message any stage of ``survey``."""
    with valkey_errors(f"reading the {survey.name} queues"):
        client = get_client(settings.valkey)
        return not pending_alerts(client, survey) and not queued_messages(settings, survey)


def close_survey_nights(
    settings: Settings, survey: Survey, now: float | None = None
) -> list[dict[str, Any]]:
    """Write the report of every ended, not yet closed night of ``survey``; return them.

    A night has ended when no stage finished a batch of it for ``conductor.quiet_s``
    (so no new message came from its topic) and every queue of the survey is drained.
    """
    now = time.time() if now is None else now
    db = get_db(settings.mongo)
    written = []
    with valkey_errors(f"listing the {survey.name} nights"):
        nights = nights_seen(get_client(settings.valkey), survey.name)
    for night in nights:
        stored = stored_report(db, survey, night)
        if stored is not None and stored.get("closed"):
            continue
        report = build_report(settings, survey, night)
        if idle_for(report, now) < settings.conductor.quiet_s or not drained(settings, survey):
            log.info("%s night %s is still running; not closed", survey.name, night)
            continue
        report["closed"] = True
        store_report(db, survey, report)
        log.log(
            logging.WARNING if report["flagged"] else logging.INFO,
            "night report\n%s",
            format_report(report),
        )
        written.append(report)
    return written


def close_nights(settings: Settings | None = None) -> list[str]:
    """Close every survey's ended nights: write their reports to ``<SURVEY>_nights``.

    The scheduler's end-of-night job (``boom_tasks.conductor.jobs:close_nights``).

    Parameters
    ----------
    settings
        Process settings; default: :func:`~boom_tasks.settings.get_settings` (so the
        scheduler may call it with no argument).

    Returns
    -------
    list of str
        ``"<SURVEY>:<night>"`` of every report written by this call (a night is
        closed once: later calls skip it).
    """
    settings = settings or get_settings()
    closed = []
    for survey in SURVEYS.values():
        try:
            closed += [f"{survey.name}:{r['night']}" for r in close_survey_nights(settings, survey)]
        except BoomError as e:
            # One survey's trouble must not keep the other's nights open.
            log.error("closing the %s nights failed: %s", survey.name, e)
    return closed
