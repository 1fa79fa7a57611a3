"""Which collections ("catalogs") a user may read, and which database holds each.

A name the user may not read is answered exactly like a name that does not
exist (404), as BOOM does, so the API does not reveal what it holds. The rules:

- ``users`` (password hashes) and ``system.*`` are never served, admins included;
- the broker's operational collections (:data:`ADMIN_ONLY`) only to admins;
- anything else when it matches one of the user's patterns (``--catalogs``), or
  the configured default (``api.default_catalogs``) for a user without a list.

Alert collections live in the broker's database and archival catalogs in
``mongo.catalog_database`` (the same one unless configured); a name is looked
up in the broker's database first.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from pymongo.collection import Collection
from pymongo.database import Database

from boom_tasks.api.errors import NotFound
from boom_tasks.api.users import USERS_COLLECTION, User
from boom_tasks.catalogs.meta import META_COLLECTION, get_meta
from boom_tasks.services.mongo import mongo_errors
from boom_tasks.sky.healpix import DEFAULT_ORDER, HPX_FIELD

#: Collections never served through the API.
HIDDEN = frozenset({USERS_COLLECTION})
#: The broker's own bookkeeping (``fnmatch`` patterns): admins only.
ADMIN_ONLY = (
    "filters",
    META_COLLECTION,
    "*_quarantine",
    "*_publications",
    "*_filter_passes",
)
#: Surveys whose alert collections boom-client reads whether or not this broker
#: ingests them: ``get_object`` looks for each object's counterpart in the other
#: survey (``LSST_alerts_aux``) and does not expect a 404 there. Such a collection,
#: when absent, is answered as an empty one, whatever the user's patterns.
CLIENT_SURVEYS = ("ZTF", "LSST", "DECAM", "WINTER")
_ALWAYS_PRESENT = frozenset(
    f"{survey}{suffix}"
    for survey in CLIENT_SURVEYS
    for suffix in ("_alerts", "_alerts_aux", "_alerts_cutouts")
)
#: Alert collections carry the same HEALPix field and order as catalogs (ingest writes it).
_ALERT_COLLECTIONS = frozenset(f"{survey}_alerts" for survey in CLIENT_SURVEYS)


def may_read(user: User, name: str, default_patterns: Sequence[str]) -> bool:
    """Tell whether ``user`` may read collection ``name`` (existing or not)."""
    if name in HIDDEN or name.startswith("system.") or not name:
        return False
    if user.admin:
        return True
    if any(fnmatchcase(name, pattern) for pattern in ADMIN_ONLY):
        return False
    patterns = default_patterns if user.catalogs is None else user.catalogs
    return any(fnmatchcase(name, pattern) for pattern in patterns)


class Catalogs:
    """The collections one user may read, for the duration of one request.

    Parameters
    ----------
    db
        The broker's database (alerts, aux, cutouts).
    catalog_db
        The database of the archival catalogs (may be ``db``).
    user
        Whose permissions apply.
    default_patterns
        Patterns for a user without a list of their own.
    """

    def __init__(
        self, db: Database, catalog_db: Database, user: User, default_patterns: Sequence[str]
    ) -> None:
        self.db, self.catalog_db, self.user = db, catalog_db, user
        self._defaults = tuple(default_patterns)
        self._where: dict[str, Database] | None = None

    def _locations(self) -> dict[str, Database]:
        if self._where is None:
            with mongo_errors("listing collections"):
                where = dict.fromkeys(self.catalog_db.list_collection_names(), self.catalog_db)
                if self.catalog_db.name != self.db.name:
                    where.update(dict.fromkeys(self.db.list_collection_names(), self.db))
            self._where = where
        return self._where

    def names(self) -> list[str]:
        """Return the existing collections the user may read, sorted."""
        return sorted(n for n in self._locations() if may_read(self.user, n, self._defaults))

    def database(self, name: str) -> Database:
        """Return the database holding ``name``.

        Raises
        ------
        NotFound
            If it does not exist or the user may not read it (the same answer).
        """
        found = self._locations().get(name)
        if found is not None and may_read(self.user, name, self._defaults):
            return found
        if found is None and name in _ALWAYS_PRESENT and name not in HIDDEN:
            # Absent, so empty for everyone: there is nothing in it to protect.
            return self.db
        raise NotFound(f"catalog {name!r} does not exist, or you may not read it")

    def collection(self, name: str) -> Collection:
        """Return readable collection ``name`` (see :meth:`database` for the errors)."""
        return self.database(name)[name]

    def pixel_index(self, name: str) -> tuple[str, int] | None:
        """Return the HEALPix field and order of readable ``name``, or None if it has none.

        Catalogs loaded by ``boom catalogs load`` record theirs in ``catalogs_meta``;
        alert collections carry :data:`HPX_FIELD` at the default order.
        """
        database = self.database(name)
        meta = get_meta(database, name)
        if meta is not None and "hpx_order" in meta:
            return str(meta.get("hpx_field", HPX_FIELD)), int(meta["hpx_order"])
        if name in _ALERT_COLLECTIONS:
            return HPX_FIELD, DEFAULT_ORDER
        return None
