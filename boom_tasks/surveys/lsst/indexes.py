"""Indexes of LSST's alert and aux collections (created by workers at boot)."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from boom_tasks.surveys import indexes

#: BOOM's layout, plus solar-system objects: users follow an asteroid by its id.
ALERT_INDEXES = (*indexes.ALERT_INDEXES, IndexModel([("ssObjectId", ASCENDING)], sparse=True))
AUX_INDEXES = indexes.AUX_INDEXES
