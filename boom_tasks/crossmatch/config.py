"""What to crossmatch each survey's objects with: one entry per catalog.

The fields follow BOOM's ``crossmatch`` configuration (``catalog``, ``radius``,
``projection``, ``use_distance``, ``distance_key``, ``distance_max``,
``distance_max_near``) so a BOOM config section can be pasted in, with two
differences: ``radius`` is in arcseconds (BOOM converts it to radians on load,
we never expose radians), and ``distance_unit`` says what ``distance_key``
holds (BOOM assumes a redshift).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from boom_tasks.config_base import Section

#: Fields every catalog row keeps in a match, whatever the projection.
ALWAYS_KEPT = ("_id",)


class CrossmatchCatalog(Section):
    """One catalog matched against every new object of a survey.

    In distance mode (galaxy catalogs) a row matches when its angular distance is
    below ``min(distance_max / scale, distance_max_near)``, ``scale`` being the
    galaxy's kiloparsecs per arcsecond: the radius shrinks with the galaxy's
    distance so it spans the same ``distance_max`` kpc at every distance, and
    ``distance_max_near`` caps it for nearby galaxies (whose kpc-radius would
    cover a huge patch of sky). ``radius`` stays the outer cone searched.
    """

    #: Collection name of the catalog, as loaded with ``boom catalogs load``.
    catalog: str = Field(min_length=1)
    #: Cone radius in arcseconds (in distance mode, the largest radius searched).
    radius: float = Field(gt=0, le=3600)
    #: Fields of the catalog rows to keep in a match (inclusion only); empty keeps all.
    projection: dict[str, Literal[0, 1, True]] = {}
    #: Keep at most this many matches, nearest first; None keeps every match.
    max_results: int | None = Field(None, ge=1)
    #: Galaxy-catalog mode: the match radius depends on each row's distance.
    use_distance: bool = False
    #: Row field with the galaxy's distance (distance mode).
    distance_key: str | None = None
    #: Unit of ``distance_key``: "Mpc" (angular-diameter distance) or "z" (redshift,
    #: with BOOM's scale of 1 kpc per arcsec at z = 0.05).
    distance_unit: Literal["Mpc", "z"] = "Mpc"
    #: Largest projected separation in kpc (distance mode).
    distance_max: float | None = Field(None, gt=0)
    #: Largest radius in arcseconds for nearby galaxies (distance mode).
    distance_max_near: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _distance_mode(self) -> CrossmatchCatalog:
        if self.use_distance:
            missing = [
                k
                for k in ("distance_key", "distance_max", "distance_max_near")
                if getattr(self, k) is None
            ]
            if missing:
                raise ValueError(f"use_distance needs {', '.join(missing)}")
        if any(v == 0 for v in self.projection.values()):
            raise ValueError("projection must list fields to keep (value 1), not to drop")
        return self

    def fields(self) -> list[str] | None:
        """Return the row fields to fetch (None for whole rows)."""
        if not self.projection:
            return None
        extra = [self.distance_key] if self.use_distance and self.distance_key else []
        return list(dict.fromkeys([*ALWAYS_KEPT, *self.projection, *extra]))


#: The catalogs every survey's objects are matched with by default: the real ones in
#: ``../shared/data/catalogs``. 2 arcsec for stars (BOOM's radius for its star
#: catalogs); galaxies within 30 kpc of projected separation, at most 300 arcsec
#: away (BOOM's CLU entry: ``distance_max: 30``, ``distance_max_near: 300``).
DEFAULT_CATALOGS: tuple[CrossmatchCatalog, ...] = (
    CrossmatchCatalog(catalog="vsx", radius=2.0, projection={"VType": 1}),
    CrossmatchCatalog(catalog="gcvs", radius=2.0, projection={"VarType": 1}),
    CrossmatchCatalog(
        catalog="mangrove",
        radius=300.0,
        projection={"HyperLEDA_name": 1, "2MASS_name": 1, "lum_dist": 1, "ang_dist": 1},
        use_distance=True,
        distance_key="ang_dist",
        distance_unit="Mpc",
        distance_max=30.0,
        distance_max_near=300.0,
    ),
)
