"""Run a replay: plan its alerts, send them in slices beside the live night, follow results.

Step 1: record the run (``queued``), then plan: the stored candids it covers
        (the last N nights, or one night), sorted, or for a re-ingest the packets
        of its source, stored in Valkey a slice at a time; ``running`` with its
        total (None until read, for a Kafka topic).
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
import itertools
import logging
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from typing import Any

import dramatiq
from dramatiq.results import ResultFailure, ResultTimeout

from boom_tasks.batches import batch_queues, pending_alerts, reap_orphans, store_batch
from boom_tasks.errors import BoomError, ConfigError
from boom_tasks.filter.testing import Selection, latest_night, night_jd_range, select_candids
from boom_tasks.night import queued_messages
from boom_tasks.replays import store
from boom_tasks.replays.chain import batch_owner
from boom_tasks.replays.sources import reingest_source
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
    nights = int(params.get("nights") or 1)
    if nights < 1:
        raise ConfigError(f"a replay covers at least one night, not {nights}")
    db = get_db(settings.mongo)
    last = params.get("night")
    if last in (None, "latest"):
        last = latest_night(db, survey)
    if last is None:
        return []
    selection = Selection(jd_range=night_range(last, nights))
    return select_candids(db, survey, selection)


def live_backlog(settings: Settings, survey: Survey) -> int:
    """Return the live night's messages waiting or running in the survey's stages, and batches."""
    valkey = get_client(settings.valkey)
    with valkey_errors("reading the live queues"):
        queued = queued_messages(settings, survey)
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

    def __init__(self, settings: Settings, run_id: str, total: int | None) -> None:
        self.settings, self.run_id, self.total = settings, run_id, total
        self.done = 0
        self.counts: Counter[str] = Counter()

    def state(self) -> dict[str, int | None]:
        """Return the run's ``progress`` field: alerts done and total (None: unknown yet)."""
        return {"done": self.done, "total": self.total}

    def final(self) -> dict[str, int | None]:
        """Return the progress of a finished run: its total is what was done, if unknown."""
        return {"done": self.done, "total": self.done if self.total is None else self.total}

    def add(self, alerts: int, result: dict[str, int]) -> None:
        """Count one finished slice and write the run's progress and counts."""
        self.done += alerts
        self.counts.update({k: v for k, v in result.items() if k != "alerts"})
        db = get_db(self.settings.mongo)
        store.update_run(
            db, self.settings, self.run_id, progress=self.state(), counts=dict(self.counts)
        )


#: One message of a run: its positional arguments, keyword arguments and alerts.
Unit = tuple[tuple[Any, ...], dict[str, Any], int]


def candid_units(settings: Settings, run: dict[str, Any], candids: list[int]) -> Iterator[Unit]:
    """Yield the messages of a run over stored alerts: slices of ``candids``."""
    params = run["params"]
    order = (run["_id"], run["kind"], params.get("filter_id") or "", params.get("fid"))
    for chunk in _slices(candids, settings.replays.slice_size):
        yield (*order, params.get("topic") or "", chunk), {}, len(chunk)


def packet_units(
    settings: Settings, survey: Survey, run: dict[str, Any], packets: Iterator[bytes]
) -> Iterator[Unit]:
    """Yield the messages of a re-ingest: each slice of packets stored as a Valkey batch."""
    valkey, owner = get_client(settings.valkey), batch_owner(survey)
    ttl = settings.bridge.batch_ttl_s
    # A re-ingest killed between storing a slice and sending it left an orphan behind.
    reap_orphans(valkey, owner, settings.bridge.orphan_after_s, ttl, batch_queues(survey))
    order: tuple[Any, ...] = (run["_id"], run["kind"], "", None, "", [])
    while chunk := list(itertools.islice(packets, settings.replays.slice_size)):
        ref = store_batch(valkey, owner, chunk, ttl)
        yield order, {"batch_key": ref.key}, ref.count


def execute(
    settings: Settings, survey: Survey, run_id: str, actor: dramatiq.Actor
) -> dict[str, Any]:
    """Run the replay ``run_id`` to its end; return its final document.

    A failure is recorded on the run (``failed`` and the error) and returned, not
    raised: the run's document is where its outcome is read.
    """
    db = get_db(settings.mongo)
    run = store.get_run(db, settings, run_id)
    try:
        if run["kind"] == "reingest":
            packets, total = reingest_source(settings, survey, run["params"])
            units = packet_units(settings, survey, run, packets)
        else:
            candids = plan(settings, survey, run["params"])
            total, units = len(candids), candid_units(settings, run, candids)
        progress = _Progress(settings, run_id, total)
        store.update_run(db, settings, run_id, state="running", progress=progress.state())
        _send_all(settings, survey, units, actor, progress)
    except (BoomError, ResultFailure, ResultTimeout, OSError) as e:
        # OSError: an archive that cannot be read. The run records why it stopped.
        log.error("replay %s failed: %s", run_id, e)
        store.update_run(db, settings, run_id, state="failed", error=f"{type(e).__name__}: {e}")
    else:
        # A source whose size was unknown has its total once it is read.
        store.update_run(db, settings, run_id, state="done", progress=progress.final())
    return store.get_run(db, settings, run_id)


def _send_all(
    settings: Settings,
    survey: Survey,
    units: Iterator[Unit],
    actor: dramatiq.Actor,
    progress: _Progress,
) -> None:
    """Send the run's messages (the live night first), collecting results as they come."""
    config = settings.replays
    timeout_ms = int(config.slice_timeout_s * 1000)
    inflight: deque[tuple[dramatiq.Message, int]] = deque()

    def collect_oldest() -> None:
        message, alerts = inflight.popleft()
        # (a Valkey error here fails the run with its reason, as a timeout does)
        with valkey_errors("waiting for a replay slice's result"):
            result = message.get_result(block=True, timeout=timeout_ms)
        progress.add(alerts, result)

    for args, kwargs, alerts in units:
        while len(inflight) >= config.max_inflight:
            collect_oldest()
        _wait_live_quiet(settings, survey)
        inflight.append((actor.send_with_options(args=args, kwargs=kwargs), alerts))
    while inflight:
        collect_oldest()
