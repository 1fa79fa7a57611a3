"""Cross-survey association: the same object seen by two surveys gets each other's id.

Step 1: of the batch's new objects, keep those the other survey can see (its
        declination range, ``Survey.footprint``: ZTF sees dec >= -30°, LSST
        dec <= +33.5°);
Step 2: find the other survey's alerts within :data:`ALIAS_RADIUS_ARCSEC` of each
        object with ONE batched HEALPix query for the batch (the alerts' indexed
        ``hpx`` field, as catalog crossmatches do), never one geo query per object;
Step 3: store ``aliases.<OTHER>`` (the other survey's objectIds, nearest first) on
        the new object's aux document, and add this object to ``aliases.<THIS>``
        of every object it matched, so the association holds whichever survey saw
        the object first.

A later alert of the other survey finds this object the same way when its own
object is new; both writes are idempotent (``$set`` of the same list, ``$addToSet``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import UpdateOne
from pymongo.database import Database

from boom_tasks.services.mongo import mongo_errors
from boom_tasks.sky.cone import cone_search
from boom_tasks.surveys.base import Survey

#: Two surveys' objects closer than this are one object (BOOM associates within 2″).
ALIAS_RADIUS_ARCSEC = 2.0
#: Field of the aux document holding the other surveys' objectIds, by survey name.
ALIASES_FIELD = "aliases"


def visible_to(other: Survey, positions: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Return the positions inside ``other``'s declination range."""
    low, high = other.footprint
    return {oid: pos for oid, pos in positions.items() if low <= pos[1] <= high}


def nearest_objects(matches: Iterable[dict[str, Any]]) -> list[str]:
    """Return the distinct objectIds of alerts sorted nearest first (each at its nearest alert)."""
    seen: dict[str, None] = {}
    for doc in matches:
        seen.setdefault(doc["objectId"], None)
    return list(seen)


def find_aliases(
    db: Database,
    other: Survey,
    positions: dict[str, tuple[float, float]],
    radius_arcsec: float = ALIAS_RADIUS_ARCSEC,
) -> dict[str, list[str]]:
    """Return, for each object the other survey can see, its objects within the radius.

    Parameters
    ----------
    db
        The broker's database (the other survey's alerts collection is read).
    other
        The survey to associate with.
    positions
        ``objectId → (ra, dec)`` in degrees of this survey's new objects.
    radius_arcsec
        Association radius.
    """
    visible = visible_to(other, positions)
    if not visible:
        return {}
    ids = list(visible)
    found = cone_search(
        db[other.alerts],
        [visible[i][0] for i in ids],
        [visible[i][1] for i in ids],
        radius_arcsec,
        fields=["objectId"],
    )
    return {oid: nearest_objects(rows) for oid, rows in zip(ids, found, strict=True)}


def store_aliases(
    db: Database, survey: Survey, other: Survey, aliases: dict[str, list[str]]
) -> int:
    """Store both directions of the associations; return how many objects were aliased.

    An object with no match gets no field: a survey's documents stay as they were
    where the other survey has seen nothing.
    """
    mine = [
        UpdateOne({"_id": oid}, {"$set": {f"{ALIASES_FIELD}.{other.name}": found}})
        for oid, found in aliases.items()
        if found
    ]
    theirs = [
        UpdateOne({"_id": found}, {"$addToSet": {f"{ALIASES_FIELD}.{survey.name}": oid}})
        for oid, matched in aliases.items()
        for found in matched
    ]
    with mongo_errors(f"storing {survey.name}/{other.name} aliases"):
        if mine:
            db[survey.aux].bulk_write(mine, ordered=False)
        if theirs:
            db[other.aux].bulk_write(theirs, ordered=False)
    return len(mine)


def associate(
    db: Database,
    survey: Survey,
    others: Iterable[Survey],
    positions: dict[str, tuple[float, float]],
) -> int:
    """Associate this survey's new objects with every other survey's; return objects aliased."""
    return sum(
        store_aliases(db, survey, other, find_aliases(db, other, positions))
        for other in others
        if other.name != survey.name
    )
