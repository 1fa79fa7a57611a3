"""An actor over its time budget on every batch."""

from __future__ import annotations

import time
from typing import Any

from boom_tasks.science.base import ScienceActor


def run(alerts: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    time.sleep(0.08)  # over its budget, under twice it (a run past twice it is stopped)
    return {a["_id"]: {"ok": True} for a in alerts}


ACTOR = ScienceActor(name="slow", surveys=("ZTF",), run=run, time_budget_s=0.05)
