"""Indexes of a survey's collections, created when a worker starts (idempotent)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel
from pymongo.database import Database

from boom_tasks.services.mongo import create_missing_indexes
from boom_tasks.sky.healpix import HPX_FIELD
from boom_tasks.surveys import Survey

#: Alerts are found by position (users' $geoWithin, and the HEALPix pixel for batched
#: cone searches, see boom_tasks.sky), object and time. Every index
#: costs on each insert (the 2dsphere one most), so later stages add theirs only
#: when a query of theirs needs it; filters start from ``_id`` (the batch's candids).
ALERT_INDEXES = [
    IndexModel([("coordinates.radec_geojson", GEOSPHERE)]),
    IndexModel([(HPX_FIELD, ASCENDING)]),
    IndexModel([("objectId", ASCENDING)]),
    IndexModel([("candidate.jd", DESCENDING)]),
]

AUX_INDEXES = [
    IndexModel([("coordinates.radec_geojson", GEOSPHERE)]),
    IndexModel([("updated_at", DESCENDING)]),
]

QUARANTINE_INDEXES = [IndexModel([("quarantined_at", DESCENDING)])]

#: The output stage reads a batch's passes by candid; ``boom filters`` lists by filter.
PASSES_INDEXES = [IndexModel([("candid", ASCENDING)]), IndexModel([("filter_id", ASCENDING)])]


def ensure_indexes(db: Database, survey: Survey) -> None:
    """Create the survey's indexes if they do not exist yet."""
    create_missing_indexes(db[survey.alerts], ALERT_INDEXES)
    create_missing_indexes(db[survey.aux], AUX_INDEXES)
    create_missing_indexes(db[survey.quarantine], QUARANTINE_INDEXES)
    create_missing_indexes(db[survey.filter_passes], PASSES_INDEXES)
