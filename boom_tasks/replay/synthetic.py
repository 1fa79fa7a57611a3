"""Survey-neutral parts of synthetic alert streams: positions, objects, argument checks.

Each survey's ``synth.py`` copies its real packets with new ids; where on the sky
each copy goes, and which alerts share an object, is decided here the same way
for every survey, so two surveys' synthetic streams have the same shape.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

#: Floor of cos(dec) when converting arc offsets to RA offsets, so a position
#: drawn right at a pole stays finite.
MIN_COS_DEC = 1e-6


@dataclass(frozen=True)
class Placement:
    """Where synthetic alert ``index`` goes: its object and its position (degrees)."""

    index: int
    object_number: int
    ra: float
    dec: float


def check_counts(n: int, start: int, alerts_per_object: int) -> None:
    """Refuse a negative count or start, or objects of fewer than one alert.

    Raises
    ------
    ValueError
        Naming the three values.
    """
    if n < 0 or start < 0 or alerts_per_object < 1:
        raise ValueError(
            f"need n >= 0, start >= 0, alerts_per_object >= 1; got {n}, {start}, "
            f"{alerts_per_object}"
        )


def cos_dec(dec: float) -> float:
    """Return cos(dec) for ``dec`` in degrees, floored at :data:`MIN_COS_DEC`."""
    return max(math.cos(math.radians(dec)), MIN_COS_DEC)


def random_position(rng: random.Random) -> tuple[float, float]:
    """Draw ``(ra, dec)`` in degrees uniformly on the sphere (not uniformly in dec)."""
    ra = rng.uniform(0.0, 360.0) % 360.0
    dec = math.degrees(math.asin(rng.uniform(-1.0, 1.0)))
    return ra, dec


def scatter(rng: random.Random, ra: float, dec: float, sigma_deg: float) -> tuple[float, float]:
    """Return ``(ra, dec)`` moved by a random offset of ``sigma_deg`` on the sky."""
    new_dec = min(90.0, max(-90.0, dec + rng.gauss(0.0, sigma_deg)))
    return (ra + rng.gauss(0.0, sigma_deg) / cos_dec(dec)) % 360.0, new_dec


def placements(
    rng: random.Random, n: int, start: int, alerts_per_object: int, scatter_deg: float
) -> Iterator[Placement]:
    """Yield where alerts ``start .. start + n - 1`` go, drawing from ``rng`` in order.

    Consecutive ``alerts_per_object`` alerts share an object and its position, each
    detection scattered around it by ``scatter_deg`` (the survey's astrometric
    precision), so repeated detections are not bit-identical.
    """
    ra = dec = 0.0
    for i in range(start, start + n):
        number, rank = divmod(i, alerts_per_object)
        if rank == 0 or i == start:  # a new object: draw its place on the sky
            ra, dec = random_position(rng)
        yield Placement(i, number, *scatter(rng, ra, dec, scatter_deg))
