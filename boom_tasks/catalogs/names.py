"""Names a catalog may not take: the broker's own collections.

A catalog load writes into (and with ``--replace`` drops) the collection of its
name, so a name that is one of the broker's collections must be refused even
before that collection exists: loading ``filters`` would otherwise drop every
user's filters, loading ``ZTF_alerts`` would mix catalog rows into the alerts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from boom_tasks.catalogs.errors import CatalogError
from boom_tasks.catalogs.meta import META_COLLECTION

if TYPE_CHECKING:
    from boom_tasks.settings import Settings

#: Catalog names must be plain collection names.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,119}")


def survey_prefixes() -> list[str]:
    """Return the prefix of every registered survey's collections (``ZTF_``, ``LSST_``).

    Every collection of a survey (alerts, aux, cutouts, quarantine, filter passes,
    publications, nights, science figures) is named by ``Survey._collection`` or
    the same pattern: prefix, survey name, ``_``, suffix.
    """
    from boom_tasks.surveys import SURVEYS

    return [f"{s.collection_prefix}{s.name}_" for s in SURVEYS.values()]


def broker_collections(settings: Settings | None = None) -> frozenset[str]:
    """Return the names of the broker's collections that belong to no survey.

    Parameters
    ----------
    settings
        The broker's settings, for the collection names they configure (replay
        runs, scheduler jobs and runs); None takes the default names.
    """
    # Deferred: these modules are only needed to check a name, and some import the
    # catalogs package themselves.
    from boom_tasks.api.users import USERS_COLLECTION
    from boom_tasks.filter.store import FILTERS
    from boom_tasks.replays.config import ReplaySettings
    from boom_tasks.replays.publish import PUBLICATIONS
    from boom_tasks.schedule.config import ScheduleSettings
    from boom_tasks.science.health import SCIENCE_ACTORS

    replays = settings.replays if settings else ReplaySettings()
    schedule = settings.schedule if settings else ScheduleSettings()
    return frozenset(
        {
            META_COLLECTION,
            FILTERS,
            USERS_COLLECTION,
            PUBLICATIONS,
            SCIENCE_ACTORS,
            replays.collection,
            schedule.jobs_collection,
            schedule.runs_collection,
        }
    )


def check_name(name: str, settings: Settings | None = None) -> None:
    """Refuse a catalog name that is not a plain collection name or is the broker's.

    Parameters
    ----------
    name
        The catalog name.
    settings
        The broker's settings (see :func:`broker_collections`).

    Raises
    ------
    CatalogError
        If ``name`` has characters other than letters, digits, ``_``, ``-`` and
        ``.``, is a system collection, or is (or is named like) one of the broker's
        own collections.
    """
    if not _NAME.fullmatch(name) or name.startswith("system."):
        raise CatalogError(
            f"invalid catalog name {name!r}: use letters, digits, '_', '-' or '.' (not system.*)"
        )
    if name in broker_collections(settings):
        raise CatalogError(
            f"catalog name {name!r} is one of the broker's own collections; choose another name"
        )
    prefix = next((p for p in survey_prefixes() if name.startswith(p)), None)
    if prefix is not None:
        raise CatalogError(
            f"catalog name {name!r} starts with {prefix!r}, the prefix of the broker's "
            "survey collections; choose another name"
        )
