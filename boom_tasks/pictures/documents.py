"""Read one stored alert's documents and make its view: what the API and the dashboard draw.

Step 1: read the alert, its cutouts and its object's aux document by id;
Step 2: read the filter passes the reader may see (a query the caller gives);
Step 3: read the aux documents of the object's aliases in the surveys the caller
        names (``aliases.<SURVEY>``, :mod:`boom_tasks.crossmatch.aliases`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo.database import Database

from boom_tasks.crossmatch.aliases import ALIASES_FIELD
from boom_tasks.errors import BoomError
from boom_tasks.pictures.view import AlertView, from_documents
from boom_tasks.services.mongo import mongo_errors
from boom_tasks.surveys import SURVEYS
from boom_tasks.surveys.base import Survey

#: Fields of an alias's aux document the light curve needs.
ALIAS_FIELDS = {"prv_candidates": 1, "prv_nondetections": 1, "fp_hists": 1}
#: Most filter passes listed in one picture's header.
MAX_PASSES = 20


class AlertNotFound(BoomError):
    """No alert with this id is stored."""


def _aliases(
    db: Database, aux: Mapping[str, Any] | None, surveys: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    linked = (aux or {}).get(ALIASES_FIELD) or {}
    out: dict[str, list[dict[str, Any]]] = {}
    for name in surveys:
        ids = linked.get(name) or []
        other = SURVEYS.get(name)
        if ids and other is not None:
            docs = db[other.aux].find({"_id": {"$in": list(ids)}}, ALIAS_FIELDS)
            out[name] = sorted(docs, key=lambda d: ids.index(d["_id"]))
    return out


def read_view(
    db: Database,
    survey: Survey,
    candid: int,
    *,
    passes: Mapping[str, Any] | None = None,
    alias_surveys: Iterable[str] = (),
) -> AlertView:
    """Return the view of stored alert ``candid`` (see the module docstring).

    Parameters
    ----------
    db
        The broker's database.
    survey
        The alert's survey.
    candid
        The alert's id.
    passes
        Extra terms of the query on ``<survey>_filter_passes`` (e.g. the reader's
        own filters); None lists no filter.
    alias_surveys
        Surveys whose aliases of the object are drawn too.

    Raises
    ------
    AlertNotFound
        If no such alert is stored.
    ServiceUnavailable
        If the database does not answer.
    """
    with mongo_errors(f"reading {survey.name} alert {candid} for its picture"):
        alert = db[survey.alerts].find_one({"_id": candid})
        if alert is None:
            raise AlertNotFound(f"no {survey.name} alert with candid {candid}")
        cutouts = db[survey.cutouts].find_one({"_id": candid})
        aux = db[survey.aux].find_one({"_id": alert.get("objectId")})
        found = []
        if passes is not None:
            query = {"candid": candid, **passes}
            found = list(db[survey.filter_passes].find(query).limit(MAX_PASSES))
        aliases = _aliases(db, aux, [s for s in alias_surveys if s != survey.name])
    return from_documents(survey, alert, aux, cutouts, found, aliases)
