"""The main job: replay one night through the whole running broker and report.

Step 1: produce the night's packets to its Kafka topic (``boom-produce``).
Step 2: start supervised Dramatiq worker processes (``boom-workers``).
Step 3: run the bridge to the end of the topic (``boom-bridge --exit-on-eof``).
Step 4: wait until every queued batch has gone through every stage (ingest,
        crossmatch, ML), stop the workers, and print what is now in MongoDB:
        alerts, objects, quarantined packets and why, enrichment counts.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from boom_tasks.batches import pending_alerts
from boom_tasks.broker import NAMESPACE
from boom_tasks.errors import BoomError
from boom_tasks.monitor.pipeline import chain_queues
from boom_tasks.services.mongo import get_db
from boom_tasks.services.valkey import get_client
from boom_tasks.settings import Settings
from boom_tasks.surveys import Survey

log = logging.getLogger(__name__)

#: Seconds to wait for the workers to drain the queue after the bridge stops.
DRAIN_TIMEOUT_S = 600.0


@dataclass
class NightReport:
    """What one replayed night left in the database."""

    produced: int
    alerts: int
    objects: int
    quarantined: dict[str, int]
    seconds: float
    #: Alerts with properties and classifications; objects with a match, per catalog.
    enriched: int = 0
    matched: dict[str, int] | None = None


def bin_path(name: str) -> str:
    """Return the path of console script ``name`` of this environment (or the bare name)."""
    # Console scripts live beside the interpreter in a virtual environment.
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def start_workers(processes: int, threads: int = 2) -> subprocess.Popen:
    """Start ``boom-workers``: ``processes`` supervised Dramatiq worker processes.

    Each worker process is restarted when it dies, and its unacknowledged messages
    requeued at once (:mod:`boom_tasks.workers.supervise`), so a night survives a
    worker's crash instead of stopping every worker.
    """
    cmd = [bin_path("boom-workers"), "--processes", str(processes), "--threads", str(threads)]
    return subprocess.Popen(cmd)


def stop(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Stop a child with SIGTERM (graceful), then SIGKILL if it lingers.

    ``timeout`` exceeds ``worker.stop_timeout_s`` (60 s by default), the time
    ``boom-workers`` gives its processes before killing them itself.
    """
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def queued_messages(settings: Settings, survey: Survey) -> int:
    """Return the messages not yet acknowledged on any of the survey's stage queues.

    The stages are the chain's (science included: empty where no actor is enabled).
    The survey's replay queue is left out on purpose: a replay (a filter backfill over
    past nights, say) is not part of the night and may outlast it; waiting for it
    would hold the night's report, or time it out.
    """
    client = get_client(settings.valkey)
    # Dramatiq's Redis broker keeps a message in "<queue>.msgs" until it is acknowledged.
    keys = [f"{NAMESPACE}:{queue}.msgs" for queue in chain_queues(survey)]
    return sum(int(client.hlen(k)) for k in keys)


def wait_drained(settings: Settings, survey: Survey, timeout: float = DRAIN_TIMEOUT_S) -> None:
    """Wait until no batch awaits any stage (raises BoomError on timeout)."""
    client = get_client(settings.valkey)
    deadline = time.monotonic() + timeout
    while pending_alerts(client, survey) or queued_messages(settings, survey):
        if time.monotonic() > deadline:
            raise BoomError(f"{survey.name} processing did not finish within {timeout:.0f}s")
        time.sleep(0.5)


def report(settings: Settings, survey: Survey, produced: int, seconds: float) -> NightReport:
    """Count what the database holds for ``survey``."""
    db = get_db(settings.mongo)
    reasons: dict[str, int] = {}
    for q in db[survey.quarantine].aggregate([{"$group": {"_id": "$reason", "n": {"$sum": 1}}}]):
        reasons[q["_id"]] = q["n"]
    return NightReport(
        produced=produced,
        alerts=db[survey.alerts].count_documents({}),
        objects=db[survey.aux].count_documents({}),
        quarantined=reasons,
        seconds=seconds,
        enriched=db[survey.alerts].count_documents({"enriched_at": {"$exists": True}}),
        matched={
            spec.catalog: db[survey.aux].count_documents(
                {f"cross_matches.{spec.catalog}.0": {"$exists": True}}
            )
            for spec in settings.crossmatch.get(survey.name, [])
        },
    )


def format_report(r: NightReport, survey: Survey) -> str:
    """Render a report for the terminal."""
    lines = [
        f"{survey.name}: {r.produced} packets replayed in {r.seconds:.1f}s",
        f"  {survey.alerts}: {r.alerts} alerts",
        f"  {survey.aux}: {r.objects} objects",
        f"  {survey.quarantine}: {sum(r.quarantined.values())} packets",
    ]
    lines += [f"    {n} x {reason}" for reason, n in sorted(r.quarantined.items())]
    lines.append(f"  enriched (properties, classifications): {r.enriched} alerts")
    for catalog, n in (r.matched or {}).items():
        lines.append(f"  objects with a {catalog} match: {n}")
    return "\n".join(lines)
