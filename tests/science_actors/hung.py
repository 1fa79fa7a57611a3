"""An actor whose run never ends (a loop with no way out), and that swallows exceptions."""

from __future__ import annotations

from typing import Any

from boom_tasks.science.base import ScienceActor


def run(alerts: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    n = 0
    while True:
        try:
            n += 1
        except Exception:  # an actor's own catch-all must not keep it alive
            continue


ACTOR = ScienceActor(name="hung", surveys=("ZTF",), run=run, time_budget_s=0.2)
