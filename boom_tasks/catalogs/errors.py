"""Errors of the catalog loader: each says what is wrong and how to fix it."""

from boom_tasks.errors import BoomError


class CatalogError(BoomError):
    """A catalog cannot be loaded: missing file, unknown format, missing columns."""


class CoordinateError(CatalogError):
    """A row's position is missing, unparsable or outside the sky."""
