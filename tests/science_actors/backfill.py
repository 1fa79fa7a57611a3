"""An actor for the backfill test: g-band alerts, their magnitude (never enabled in a worker)."""

from __future__ import annotations

from typing import Any

from boom_tasks.science.base import ScienceActor


def run(alerts: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {a["_id"]: {"magpsf": a["candidate"]["magpsf"]} for a in alerts}


ACTOR = ScienceActor(name="backfill", surveys=("ZTF",), run=run, selection={"candidate.fid": 1})
