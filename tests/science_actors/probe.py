"""A simple actor: g-band alerts of galaxy-hosted objects; counts the history it was given."""

from __future__ import annotations

from typing import Any

from boom_tasks.science.base import ScienceActor

SELECTION = {"candidate.fid": 1, "cross_matches.mangrove.0": {"$exists": True}}


def run(alerts: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {
        a["_id"]: {
            "n_prv": len(a["prv_candidates"]),
            "last_prv_jd": max((p["jd"] for p in a["prv_candidates"]), default=None),
            "magpsf": a["candidate"]["magpsf"],
            "host": a["cross_matches"]["mangrove"][0]["_id"],
        }
        for a in alerts
    }


ACTOR = ScienceActor(name="probe", surveys=("ZTF",), run=run, selection=SELECTION)
