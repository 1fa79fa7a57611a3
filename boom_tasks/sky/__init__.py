"""Sky geometry shared by catalogs, crossmatch and cone searches.

- :mod:`boom_tasks.sky.healpix`: nested HEALPix pixel ids and the pixels covering a cone;
- :mod:`boom_tasks.sky.sphere`: exact great-circle separations with numpy;
- :mod:`boom_tasks.sky.cone`: many cone searches against a MongoDB collection at once.
"""

from boom_tasks.sky.healpix import DEFAULT_ORDER, HPX_FIELD, cone_pixels, cones_pixels, pixel_ids
from boom_tasks.sky.sphere import angular_separation

__all__ = [
    "DEFAULT_ORDER",
    "HPX_FIELD",
    "angular_separation",
    "cone_pixels",
    "cones_pixels",
    "pixel_ids",
]
