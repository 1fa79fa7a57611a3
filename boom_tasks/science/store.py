"""Store what a science actor produced: results and errors on the alerts, figures apart.

Every write is keyed by the alert's id (figures by ``candid:actor:figure``), so a
batch run twice writes the same thing twice: replays and backfills are harmless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pymongo import UpdateOne
from pymongo.database import Database

from boom_tasks.science.base import FIGURES_KEY, ScienceActor
from boom_tasks.services.mongo import mongo_errors
from boom_tasks.surveys import Survey


def figures_collection(survey: Survey) -> str:
    """Return the collection of the survey's science figures (``_id`` = candid:actor:figure)."""
    return f"{survey.collection_prefix}{survey.name}_science_figures"


def figure_id(candid: int, actor: str, figure: str) -> str:
    """Return the ``_id`` of one stored figure."""
    return f"{candid}:{actor}:{figure}"


def figure_path(survey: str, candid: int, actor: str, figure: str) -> str:
    """Return the API path serving one figure (see :mod:`boom_tasks.api.science`)."""
    return f"/science/{survey}/figures/{candid}/{actor}/{figure}.png"


def stored_result(
    survey: Survey,
    actor: ScienceActor,
    candid: int,
    doc: Mapping[str, Any],
    figures: Mapping[str, bytes],
    now: dt.datetime,
) -> dict[str, Any]:
    """Return ``science.<name>`` as stored: the result, its version, time and figure paths."""
    out = {**doc, "version": actor.version, "computed_at": now}
    if figures:
        out[FIGURES_KEY] = {f: figure_path(survey.name, candid, actor.name, f) for f in figures}
    return out


def write_results(
    db: Database,
    survey: Survey,
    actor: ScienceActor,
    results: Mapping[int, dict[str, Any]],
    figures: Mapping[int, Mapping[str, bytes]],
) -> None:
    """Store the figures, then ``$set`` each result (and clear an earlier error)."""
    fig_ops = [
        UpdateOne(
            {"_id": figure_id(c, actor.name, f)},
            {"$set": {"png": png, "candid": c, "actor": actor.name, "version": actor.version}},
            upsert=True,
        )
        for c, figs in figures.items()
        for f, png in figs.items()
    ]
    ops = [
        UpdateOne(
            {"_id": c},
            {"$set": {actor.field: r}, "$unset": {f"science_errors.{actor.name}": ""}},
        )
        for c, r in results.items()
    ]
    with mongo_errors(f"storing {actor.name} results"):
        if fig_ops:
            db[figures_collection(survey)].bulk_write(fig_ops, ordered=False)
        if ops:
            db[survey.alerts].bulk_write(ops, ordered=False)


def write_errors(
    db: Database,
    survey: Survey,
    actor: ScienceActor,
    candids: list[int],
    message: str,
    now: dt.datetime,
) -> None:
    """Record the actor's failure on the alerts it was given (``science_errors.<name>``)."""
    if not candids:
        return
    error = {"message": message, "version": actor.version, "at": now}
    with mongo_errors(f"recording {actor.name} errors"):
        db[survey.alerts].update_many(
            {"_id": {"$in": candids}}, {"$set": {f"science_errors.{actor.name}": error}}
        )
