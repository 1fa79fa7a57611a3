"""A worker's copy of the active filters, reloaded when they change.

Loading filters costs a query and JSON parsing; doing it for every batch is waste,
and never doing it means a worker ignores a newly activated filter. Every change
made through boom-tasks (CLI, API, the stage deactivating a failing filter) bumps
a counter in Valkey; a worker compares it once per batch (one GET) and reloads on
change, and at least every ``filters.reload_s`` for changes made behind its back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from pymongo.database import Database

from boom_tasks.filter.store import ActiveFilter, load_active
from boom_tasks.services.valkey import valkey_errors

#: Valkey key counting changes to any filter.
VERSION_KEY = "boom:filters:version"


def signal_change(valkey: redis.Redis) -> None:
    """Tell every filter worker to reload its filters before its next batch."""
    with valkey_errors("signalling a filter change"):
        valkey.incr(VERSION_KEY)


def _version(valkey: redis.Redis) -> bytes | None:
    with valkey_errors("reading the filters' version"):
        value = valkey.get(VERSION_KEY)
    return value if isinstance(value, bytes) else None


@dataclass
class _Entry:
    filters: list[ActiveFilter]
    version: bytes | None
    expires: float


class FilterCache:
    """Active filters per survey, reloaded on a signalled change or after ``reload_s``."""

    def __init__(self, reload_s: float) -> None:
        self.reload_s = reload_s
        self._entries: dict[str, _Entry] = {}

    def get(self, db: Database, valkey: redis.Redis, survey: str) -> list[ActiveFilter]:
        """Return the survey's active filters, reloading them if they may have changed."""
        version = _version(valkey)
        entry = self._entries.get(survey)
        if entry and entry.version == version and time.monotonic() < entry.expires:
            return entry.filters
        filters = load_active(db, survey)
        self._entries[survey] = _Entry(filters, version, time.monotonic() + self.reload_s)
        return filters
