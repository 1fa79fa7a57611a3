"""Request bodies of the query routes, with BOOM's field names (what boom-client sends).

Unknown fields are refused (400), so a misspelt option (``projecton``) is
reported instead of silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Radius units of a cone search, as BOOM names them, in arcseconds.
ARCSEC_PER_UNIT = {
    "Arcseconds": 1.0,
    "Arcminutes": 60.0,
    "Degrees": 3600.0,
    "Radians": 206_264.80624709636,
}
#: The range of a BSON int64, the widest integer the database holds (candids are int64).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: An integer the database can hold: a larger one is refused (400) before any query,
#: instead of failing in the driver.
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


class Query(BaseModel):
    """Fields every query names: the catalog (collection) and the time budget."""

    model_config = ConfigDict(extra="forbid")

    catalog_name: str = Field(min_length=1, description="collection, e.g. 'ZTF_alerts'")
    max_time_ms: int | None = Field(
        None, ge=0, description="server-side time budget; 0 or absent: the API's default"
    )


class FindQuery(Query):
    """``POST /queries/find``: MongoDB's find."""

    filter: dict[str, Any] = Field(default_factory=dict)
    projection: dict[str, Any] | None = None
    limit: int | None = Field(None, ge=0, description="0 or absent: no limit")
    skip: int | None = Field(None, ge=0)
    sort: dict[str, Any] | None = None


class CountQuery(Query):
    """``POST /queries/count``: exact count of the documents matching ``filter``."""

    filter: dict[str, Any] = Field(default_factory=dict)


class EstimatedCountQuery(Query):
    """``POST /queries/estimated_count``: the collection's size from its metadata."""


class PipelineQuery(Query):
    """``POST /queries/pipeline``: an aggregation pipeline (read-only stages)."""

    pipeline: list[dict[str, Any]]


class ConeSearchQuery(FindQuery):
    """``POST /queries/cone_search``: named positions, one radius; find options per position."""

    object_coordinates: dict[str, tuple[float, float]] = Field(
        description="{name: [ra, dec]} in degrees; answers come back under the same names"
    )
    radius: float = Field(gt=0)
    unit: Literal["Arcseconds", "Arcminutes", "Degrees", "Radians"] = "Arcseconds"

    def radius_arcsec(self) -> float:
        """Return the radius in arcseconds."""
        return self.radius * ARCSEC_PER_UNIT[self.unit]
