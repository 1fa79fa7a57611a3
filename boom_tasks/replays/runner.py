"""Run a replay: plan its alerts, send them in slices beside the live night, follow results.

Step 1: record the run (``queued``), then plan: the stored candids it covers
        (the last N nights, or one night), sorted; ``running`` with its total.
Step 2: send slices of ``replays.slice_size`` alerts to the survey's replay actor,
        at most ``replays.max_inflight`` at a time, and each only while the live
        queues hold at most ``replays.live_backlog_max`` messages: the live
        night always goes first.
Step 3: learn that each slice is done from Dramatiq's result backend in Valkey
        (``Message.get_result``), never by counting documents; add its counts
        and progress to the run; ``done`` at the end, or ``failed`` with the
        error of the slice that failed (after its retries).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.results import ResultFailure, ResultTimeout

from boom_tasks.batches import pending_alerts
from boom_tasks.broker import NAMESPACE, queue_name
from boom_tasks.chain import CHAIN
from boom_tasks.errors import BoomError
from boom_tasks.filter.testing import Selection, latest_night, night_jd_range, select_candids
from boom_tasks.replays import store
from boom_tasks.services.mongo import get_db
from boom_tasks.services.valkey import get_client, valkey_errors
from boom_tasks.settings import Settings
from boom_tasks.surveys import Survey

log = logging.getLogger(__name__)


def night_range(last: str, nights: int) -> tuple[float, float]:
    """Return the jd range of ``nights`` UTC nights ending with night ``last`` (YYYYMMDD)."""
    end = dt.datetime.strptime(last, "%Y%m%d") - dt.timedelta(days=nights - 1)
    lo, _ = night_jd_range(end.strftime("%Y%m%d"))
    _, hi = night_jd_range(last)
    return lo, hi


def plan(settings: Settings, survey: Survey, params: dict[str, Any]) -> list[int]:
    """Return the stored candids a run covers: ``night`` (or the last), and ``nights`` back."""
    db = get_db(settings.mongo)
    last = params.get("night")
    if last in (None, "latest"):
        last = latest_night(db, survey)
    if last is None:
        return []
    selection = Selection(jd_range=night_range(last, int(params.get("nights") or 1)))
    return select_candids(db, survey, selection)


def live_backlog(settings: Settings, survey: Survey) -> int:
    """Return the live night's messages waiting or running in the survey's stages, and batches."""
    valkey = get_client(settings.valkey)
    keys = [f"{NAMESPACE}:{queue_name(survey, stage.name)}.msgs" for stage in CHAIN]
    with valkey_errors("reading the live queues"):
        queued = sum(int(valkey.hlen(key)) for key in keys)
    # Batches the bridge stored and ingest has not taken yet count too.
    return queued + (1 if pending_alerts(valkey, survey) else 0)


def _wait_live_quiet(settings: Settings, survey: Survey) -> None:
    bound = settings.replays.live_backlog_max
    while live_backlog(settings, survey) > bound:
        time.sleep(settings.replays.poll_s)


def _slices(candids: Sequence[int], size: int) -> list[list[int]]:
    return [list(candids[k : k + size]) for k in range(0, len(candids), size)]


class _Progress:
    """The run's counts and progress, written to its document after every slice."""

    def __init__(self, settings: Settings, run_id: str, total: int) -> None:
        self.settings, self.run_id, self.total = settings, run_id, total
        self.done = 0
        self.counts: Counter[str] = Counter()

    def add(self, alerts: int, result: dict[str, int]) -> None:
        self.done += alerts
        self.counts.update({k: v for k, v in result.items() if k != "alerts"})
        store.update_run(
            get_db(self.settings.mongo),
            self.settings,
            self.run_id,
            progress={"done": self.done, "total": self.total},
            counts=dict(self.counts),
        )


def execute(
    settings: Settings, survey: Survey, run_id: str, actor: dramatiq.Actor
) -> dict[str, Any]:
    """Run the replay ``run_id`` to its end; return its final document.

    A failure is recorded on the run (``failed`` and the error) and returned, not
    raised: the run's document is where its outcome is read.
    """
    db = get_db(settings.mongo)
    run = store.get_run(db, settings, run_id)
    params = run["params"]
    try:
        candids = plan(settings, survey, params)
        progress = _Progress(settings, run_id, len(candids))
        store.update_run(
            db, settings, run_id, state="running", progress={"done": 0, "total": len(candids)}
        )
        order = (run_id, run["kind"], params["filter_id"], params.get("fid"), params["topic"])
        _send_all(settings, survey, order, candids, actor, progress)
    except (BoomError, ResultFailure, ResultTimeout) as e:
        log.error("replay %s failed: %s", run_id, e)
        store.update_run(db, settings, run_id, state="failed", error=f"{type(e).__name__}: {e}")
    else:
        store.update_run(db, settings, run_id, state="done")
    return store.get_run(db, settings, run_id)


def _send_all(
    settings: Settings,
    survey: Survey,
    order: tuple[str, str, str, str | None, str],
    candids: list[int],
    actor: dramatiq.Actor,
    progress: _Progress,
) -> None:
    """Send ``candids`` in slices (the live night first), collecting results as they come."""
    config = settings.replays
    timeout_ms = int(config.slice_timeout_s * 1000)
    inflight: deque[tuple[dramatiq.Message, int]] = deque()

    def collect_oldest() -> None:
        message, alerts = inflight.popleft()
        progress.add(alerts, message.get_result(block=True, timeout=timeout_ms))

    for chunk in _slices(candids, config.slice_size):
        while len(inflight) >= config.max_inflight:
            collect_oldest()
        _wait_live_quiet(settings, survey)
        inflight.append((actor.send(*order, chunk), len(chunk)))
    while inflight:
        collect_oldest()
