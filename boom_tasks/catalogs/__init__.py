"""Archival catalogs (VSX, GCVS, Mangrove, 3HSP...) loaded into MongoDB for crossmatch.

Read a file (:mod:`.readers`), find and parse its positions (:mod:`.coords`),
turn rows into documents (:mod:`.documents`) and load them (:mod:`.loader`),
recording each catalog in ``catalogs_meta`` (:mod:`.meta`). ``boom catalogs``
is :mod:`.cli`.
"""

from typing import Any

from boom_tasks.catalogs.errors import CatalogError, CoordinateError

#: Names re-exported lazily: the loader pulls in pyarrow and astropy (~1 s), which
#: ``boom`` commands that only parse their arguments should not pay for.
_LAZY = {
    "LoadOptions": "loader",
    "LoadReport": "loader",
    "load_catalog": "loader",
    "catalog_order": "meta",
    "list_catalogs": "meta",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CatalogError",
    "CoordinateError",
    "LoadOptions",
    "LoadReport",
    "catalog_order",
    "list_catalogs",
    "load_catalog",
]
