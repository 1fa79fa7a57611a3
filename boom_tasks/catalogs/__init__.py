"""Archival catalogs (VSX, GCVS, Mangrove, 3HSP...) loaded into MongoDB for crossmatch.

Read a file (:mod:`.readers`), find and parse its positions (:mod:`.coords`),
turn rows into documents (:mod:`.documents`) and load them (:mod:`.loader`),
recording each catalog in ``catalogs_meta`` (:mod:`.meta`). ``boom catalogs``
is :mod:`.cli`.
"""

from boom_tasks.catalogs.errors import CatalogError, CoordinateError
from boom_tasks.catalogs.loader import LoadOptions, LoadReport, load_catalog
from boom_tasks.catalogs.meta import catalog_order, list_catalogs

__all__ = [
    "CatalogError",
    "CoordinateError",
    "LoadOptions",
    "LoadReport",
    "catalog_order",
    "list_catalogs",
    "load_catalog",
]
