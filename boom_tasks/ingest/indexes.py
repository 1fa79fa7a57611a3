"""Indexes of a survey's collections, created when a worker starts (idempotent).

The alert and aux indexes are the survey's own (``Survey.alert_indexes``); the
collections every survey has the same way (quarantine, passes) are indexed here.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.database import Database

from boom_tasks.services.mongo import create_missing_indexes
from boom_tasks.surveys import Survey

QUARANTINE_INDEXES = [IndexModel([("quarantined_at", DESCENDING)])]

#: The output stage reads a batch's passes by candid; ``boom filters`` lists by filter.
PASSES_INDEXES = [IndexModel([("candid", ASCENDING)]), IndexModel([("filter_id", ASCENDING)])]


#: The output stage reads which of a batch's passes are published by candid.
PUBLICATIONS_INDEXES = [IndexModel([("candid", ASCENDING)])]


def ensure_indexes(db: Database, survey: Survey) -> None:
    """Create the survey's indexes (its own, and the broker's) if they do not exist yet."""
    create_missing_indexes(db[survey.alerts], list(survey.alert_indexes))
    create_missing_indexes(db[survey.aux], list(survey.aux_indexes))
    create_missing_indexes(db[survey.quarantine], QUARANTINE_INDEXES)
    create_missing_indexes(db[survey.filter_passes], PASSES_INDEXES)
    create_missing_indexes(db[survey.publications], PUBLICATIONS_INDEXES)
