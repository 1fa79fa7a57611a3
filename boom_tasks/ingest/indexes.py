"""Indexes of a survey's collections, created when a worker starts (idempotent)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel
from pymongo.database import Database

from boom_tasks.services.mongo import mongo_errors
from boom_tasks.surveys import Survey

#: Alerts are found by position (users' $geoWithin), object, time, and the fields
#: filters most often start from.
ALERT_INDEXES = [
    IndexModel([("coordinates.radec_geojson", GEOSPHERE)]),
    IndexModel([("objectId", ASCENDING)]),
    IndexModel([("candidate.jd", DESCENDING)]),
    IndexModel([("candidate.programid", ASCENDING), ("candidate.jd", DESCENDING)]),
    IndexModel([("created_at", DESCENDING)]),
]

AUX_INDEXES = [
    IndexModel([("coordinates.radec_geojson", GEOSPHERE)]),
    IndexModel([("updated_at", DESCENDING)]),
]

QUARANTINE_INDEXES = [IndexModel([("quarantined_at", DESCENDING)])]


def ensure_indexes(db: Database, survey: Survey) -> None:
    """Create the survey's indexes if they do not exist yet."""
    with mongo_errors(f"creating {survey.name} indexes"):
        db[survey.alerts].create_indexes(ALERT_INDEXES)
        db[survey.aux].create_indexes(AUX_INDEXES)
        db[survey.quarantine].create_indexes(QUARANTINE_INDEXES)
