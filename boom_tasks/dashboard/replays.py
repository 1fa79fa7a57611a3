"""The dashboard's "Replays" section, a run's own page, and the runs counted by state.

The runs are those ``boom replays`` and the scheduler record in the ``replays``
collection (:mod:`boom_tasks.replays.store`); this module only reads them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from html import escape
from typing import Any
from urllib.parse import quote

from prometheus_client.core import GaugeMetricFamily, Metric
from pymongo.database import Database

from boom_tasks.dashboard.html import cell, page, table, when
from boom_tasks.replays.store import STATES
from boom_tasks.settings import Settings

#: Runs listed on the overview, newest first.
REPLAYS_SHOWN = 10
#: Characters of a run's parameters shown in the list (the run's page shows them all).
PARAMS_PREVIEW = 80


def replay_url(run_id: str) -> str:
    """Return the dashboard's address of one run's page."""
    return f"/replays/{quote(run_id)}"


def runs_by_state(db: Database, settings: Settings) -> dict[tuple[str, str, str], int]:
    """Return the number of runs per ``(survey, kind, state)``."""
    rows = db[settings.replays.collection].aggregate(
        [
            {
                "$group": {
                    "_id": {"survey": "$survey", "kind": "$kind", "state": "$state"},
                    "n": {"$sum": 1},
                }
            }
        ]
    )
    return {
        (str(r["_id"].get("survey")), str(r["_id"].get("kind")), str(r["_id"].get("state"))): int(
            r["n"]
        )
        for r in rows
    }


def _params(run: dict[str, Any], limit: int | None = PARAMS_PREVIEW) -> str:
    shown = {k: v for k, v in (run.get("params") or {}).items() if v is not None}
    text = ", ".join(f"{k}={v}" for k, v in shown.items())
    return text if limit is None or len(text) <= limit else text[:limit] + "…"


def _progress(run: dict[str, Any]) -> str:
    progress = run.get("progress") or {}
    total = progress.get("total")
    return f"{progress.get('done', 0)}/{'?' if total is None else total}"


def _finished(run: dict[str, Any]) -> Any:
    return run.get("done_at") or run.get("failed_at")


def _row(run: dict[str, Any]) -> str:
    run_id = str(run["_id"])
    state = str(run.get("state"))
    which = f'data-replay="{escape(run_id)}"'
    return (
        f'<td class="l"><a href="{replay_url(run_id)}" {which}>{escape(run_id)}</a></td>'
        + cell(run.get("kind"), left=True)
        + cell(run.get("survey"), left=True)
        + cell(
            state, left=True, css="bad" if state == "failed" else "", attrs=f"{which} data-state"
        )
        + cell(_progress(run), attrs=f"{which} data-progress")
        + cell(when(run.get("running_at") or run.get("created_at")), left=True)
        + cell(when(_finished(run)), left=True)
        + cell(_params(run), left=True)
    )


def replays_html(runs: list[dict[str, Any]] | None, error: str | None = None) -> str:
    """Render the latest replay runs, newest first, failed ones in red."""
    if error:
        return f'<p class="err">unavailable: {escape(error)}</p>'
    if not runs:
        return '<p class="muted">no replay run yet (boom replays --help)</p>'
    headers = ["run", "kind", "survey", "state", "done/total", "started (UTC)", "finished (UTC)"]
    return table([*headers, "parameters"], (_row(r) for r in runs), left=4)


def replay_page(run: dict[str, Any]) -> str:
    """Return a run's own page: its state, progress, times, parameters, counts and error."""
    run_id = str(run["_id"])
    fields = [
        ("kind", run.get("kind")),
        ("survey", run.get("survey")),
        ("state", run.get("state")),
        ("progress (alerts done/total)", _progress(run)),
        ("created (UTC)", when(run.get("created_at"))),
        ("started (UTC)", when(run.get("running_at"))),
        ("finished (UTC)", when(_finished(run))),
        ("error", run.get("error")),
    ]
    rows = [cell(name, left=True) + cell(value, left=True) for name, value in fields]
    record = json.dumps(run, indent=2, default=str, sort_keys=True)
    body = (
        f'<p><a href="/">← overview</a></p><h1>Replay {escape(run_id)}</h1>'
        + table(["field", "value"], rows, left=2)
        + f"<h2>Parameters</h2><p>{escape(_params(run, None)) or '(none)'}</p>"
        + f"<h2>Full record</h2><pre data-record>{escape(record)}</pre>"
    )
    return page(f"boom-tasks replay {run_id}", body)


def replay_metrics(by_state: dict[tuple[str, str, str], int] | None) -> Iterator[Metric]:
    """Yield the replay runs gauge (every state listed, zero included, per survey and kind)."""
    if by_state is None:
        return
    g = GaugeMetricFamily(
        "boom_replay_runs", "Replay runs recorded, by state", labels=["survey", "kind", "state"]
    )
    for survey, kind in sorted({(s, k) for s, k, _ in by_state}):
        for state in STATES:
            g.add_metric([survey, kind, state], by_state.get((survey, kind, state), 0))
    yield g
