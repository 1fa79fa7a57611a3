"""Indexes of the alert and aux collections in BOOM's layout, which every survey shares."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel

from boom_tasks.sky.healpix import HPX_FIELD

#: Alerts are found by position (users' $geoWithin, and the HEALPix pixel for batched
#: cone searches, see boom_tasks.sky), object and time. Every index
#: costs on each insert (the 2dsphere one most), so later stages add theirs only
#: when a query of theirs needs it; filters start from ``_id`` (the batch's candids).
ALERT_INDEXES = (
    IndexModel([("coordinates.radec_geojson", GEOSPHERE)]),
    IndexModel([(HPX_FIELD, ASCENDING)]),
    IndexModel([("objectId", ASCENDING)]),
    IndexModel([("candidate.jd", DESCENDING)]),
)

AUX_INDEXES = (
    IndexModel([("coordinates.radec_geojson", GEOSPHERE)]),
    IndexModel([("updated_at", DESCENDING)]),
)
