"""The 25 filters of the pipeline benchmark: BOOM-style cuts of varied cost.

Ten candidate-only cuts (magnitude and real/bogus), five on age since the first
detection, five reading the object's cross-matches or light curve (they need the
aux ``$lookup``), five on properties and classifications. Each projects
annotations with ``$round``, as users' filters do.
"""

from __future__ import annotations

from typing import Any

Pipeline = list[dict[str, Any]]

POSITIVE = {"candidate.isdiffpos": {"$in": ["t", "1"]}}


def _project(**notes: Any) -> dict[str, Any]:
    return {"$project": {"objectId": 1, "annotations": notes}}


def _mag_cuts() -> list[tuple[str, Pipeline]]:
    out = []
    for i in range(10):
        mag = 17.0 + 0.25 * i
        match = {"candidate.magpsf": {"$lt": mag}, "candidate.rb": {"$gt": 0.5}, **POSITIVE}
        out.append(
            (
                f"bright_{mag:.2f}",
                [{"$match": match}, _project(mag={"$round": ["$candidate.magpsf", 2]})],
            )
        )
    return out


def _age_cuts() -> list[tuple[str, Pipeline]]:
    out = []
    for days in (0.5, 1, 3, 10, 30):
        age = {"$subtract": ["$candidate.jd", "$candidate.jdstarthist"]}
        pipeline = [
            {"$match": {"candidate.rb": {"$gt": 0.3}, **POSITIVE}},
            {"$addFields": {"age": age}},
            {"$match": {"age": {"$lt": days}, "candidate.ndethist": {"$lte": 5}}},
            _project(age={"$round": ["$age", 3]}),
        ]
        out.append((f"young_{days}d", pipeline))
    return out


def _aux_cuts() -> list[tuple[str, Pipeline]]:
    hosted = {"cross_matches.mangrove.0": {"$exists": True}}
    not_variable = {
        "cross_matches.vsx.0": {"$exists": False},
        "cross_matches.gcvs.0": {"$exists": False},
    }
    return [
        (
            "hosted",
            [
                {"$match": {**hosted, **POSITIVE}},
                _project(mag={"$round": ["$candidate.magpsf", 1]}),
            ],
        ),
        ("hosted_bright", [{"$match": {**hosted, "candidate.magpsf": {"$lt": 19}}}, _project()]),
        ("not_variable", [{"$match": {**not_variable, "candidate.rb": {"$gt": 0.8}}}, _project()]),
        ("variable_star", [{"$match": {"cross_matches.vsx.0": {"$exists": True}}}, _project()]),
        (
            "short_history",
            [
                {"$match": {"candidate.rb": {"$gt": 0.5}}},
                {"$addFields": {"n": {"$size": "$prv_candidates"}}},
                {"$match": {"n": {"$lte": 2}}},
                _project(n="$n"),
            ],
        ),
    ]


def _ml_cuts() -> list[tuple[str, Pipeline]]:
    score = {"$round": ["$classifications.anomaly_score", 3]}
    return [
        (
            "anomalous",
            [{"$match": {"classifications.anomaly_score": {"$lt": -0.05}}}, _project(score=score)],
        ),
        ("not_star", [{"$match": {"properties.star": False, **POSITIVE}}, _project()]),
        (
            "no_rock",
            [{"$match": {"properties.rock": False, "candidate.magpsf": {"$lt": 18}}}, _project()],
        ),
        ("rock", [{"$match": {"properties.rock": True}}, _project()]),
        ("near_bright_star", [{"$match": {"properties.near_brightstar": True}}, _project()]),
    ]


def bench_filters() -> list[tuple[str, Pipeline]]:
    """Return the 25 (name, pipeline) pairs."""
    filters = _mag_cuts() + _age_cuts() + _aux_cuts() + _ml_cuts()
    assert len(filters) == 25
    return filters
