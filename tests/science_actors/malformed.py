"""An actor returning a result that cannot be stored (a NaN deep inside)."""

from __future__ import annotations

from typing import Any

from boom_tasks.science.base import ScienceActor


def run(alerts: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {a["_id"]: {"fit": {"g": {"chi2": float("nan")}}} for a in alerts}


ACTOR = ScienceActor(name="malformed", surveys=("ZTF",), run=run)
