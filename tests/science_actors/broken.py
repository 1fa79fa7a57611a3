"""An actor failing every batch it gets (it selects every alert)."""

from __future__ import annotations

from typing import Any

from boom_tasks.science.base import ScienceActor


def run(alerts: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    raise RuntimeError(f"bug in the actor ({len(alerts)} alerts)")


ACTOR = ScienceActor(name="broken", surveys=("ZTF",), run=run)
