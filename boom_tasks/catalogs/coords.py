"""Right ascension and declination columns: finding them and reading them as degrees.

Catalogs give positions as decimal degrees (numbers or numeric strings) or as
sexagesimal strings: ``"12 34 56.7"``, ``"12:34:56.7"``, ``"12h34m56.7s"``,
``"+12 34 56"``, ``"-00 30 00"`` (the sign belongs to the whole angle, which is
why ``-00 30`` is negative). A sexagesimal right ascension is in hours unless it
is written with degree marks (``d`` or ``°``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from boom_tasks.catalogs.errors import CatalogError, CoordinateError

Axis = Literal["ra", "dec"]

#: Right ascension column names, most specific first, compared after lower-casing
#: and dropping punctuation (so ``R.A.``, ``RA_ICRS`` and ``_RAJ2000`` are found).
RA_NAMES = ("ra", "raj2000", "raicrs", "radeg", "rajdeg", "ra2000", "rightascension", "alpha")

#: Declination column names, compared the same way.
DEC_NAMES = ("dec", "dej2000", "decj2000", "deicrs", "decicrs", "decdeg", "dejdeg", "de", "decl")

#: Characters that separate sexagesimal fields or mark their unit.
_SEPARATORS = re.compile("[\\s:hdms\u00b0'\u2032\"\u2033]+")


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _find(columns: Sequence[str], names: Sequence[str]) -> str | None:
    by_key = {_key(c): c for c in reversed(columns)}  # reversed: the first column wins a tie
    return next((by_key[n] for n in names if n in by_key), None)


def detect_columns(
    columns: Sequence[str], ra: str | None = None, dec: str | None = None
) -> tuple[str, str]:
    """Return the names of the right ascension and declination columns.

    Parameters
    ----------
    columns
        The catalog's column names.
    ra, dec
        Names given by the user; the other is detected from common names.

    Raises
    ------
    CatalogError
        If a given name is not a column or none of the common names is found; the
        message lists the available columns.
    """
    found = []
    for axis, given, names in (("ra", ra, RA_NAMES), ("dec", dec, DEC_NAMES)):
        if given is not None and given not in columns:
            raise CatalogError(f"no {axis} column {given!r}; the columns are: {list(columns)}")
        name = given if given is not None else _find(columns, names)
        if name is None:
            raise CatalogError(
                f"cannot find the {axis} column (tried {', '.join(names)}); "
                f"give it with --{axis} COLUMN; the columns are: {list(columns)}"
            )
        found.append(name)
    return found[0], found[1]


def _sexagesimal(text: str, axis: Axis) -> float:
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-").strip().lower()
    parts = [p for p in _SEPARATORS.split(body) if p]
    if not 1 <= len(parts) <= 3 or any(not re.fullmatch(r"\d+(\.\d*)?", p) for p in parts):
        raise ValueError("not a number nor sexagesimal (e.g. '12 34 56.7' or '12:34:56.7')")
    if any("." in p for p in parts[:-1]):
        raise ValueError("only the last sexagesimal field may have a fraction")
    values = [float(p) for p in parts]
    if any(v >= 60 for v in values[1:]):
        raise ValueError("minutes and seconds must be below 60")
    angle = sum(v / 60**i for i, v in enumerate(values))
    in_hours = axis == "ra" and not any(mark in body for mark in ("d", "°"))
    if in_hours:
        if sign < 0 or angle >= 24:
            raise ValueError("right ascension in hours must be in [0, 24)")
        angle *= 15.0
    return sign * angle


def parse_angle(value: Any, axis: Axis) -> float:
    """Return one right ascension or declination in degrees (range not checked).

    Parameters
    ----------
    value
        A number (degrees), a numeric string (degrees) or a sexagesimal string.
    axis
        ``"ra"`` (sexagesimal in hours) or ``"dec"``.

    Raises
    ------
    ValueError
        If the value is missing or cannot be read; the message says why.
    """
    if value is None or isinstance(value, bool):
        raise ValueError("missing value")
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        raise ValueError(f"unexpected type {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError("missing value")
    try:
        return float(text)
    except ValueError:
        return _sexagesimal(text, axis)


def _check_range(ra: float, dec: float) -> str | None:
    if not (math.isfinite(ra) and math.isfinite(dec)):
        return "missing or not finite"
    if not 0.0 <= ra <= 360.0:
        return "ra outside [0, 360]"
    if not -90.0 <= dec <= 90.0:
        return "dec outside [-90, 90]"
    return None


def to_degrees(
    ra: Sequence[Any],
    dec: Sequence[Any],
    *,
    first_row: int = 0,
    columns: tuple[str, str] = ("ra", "dec"),
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return validated right ascensions in [0, 360) and declinations, in degrees.

    Parameters
    ----------
    ra, dec
        Values of one batch of rows (numbers or strings).
    first_row
        Row number of the batch's first value in the file (0-based), for messages.
    columns
        Names of the two columns, for messages.

    Raises
    ------
    CoordinateError
        Naming the first row whose position is missing, unparsable or off the sky.
    """
    ra_deg, dec_deg = (
        _as_float(ra, "ra", first_row, columns[0]),
        _as_float(dec, "dec", first_row, columns[1]),
    )
    bad = ~(np.isfinite(ra_deg) & np.isfinite(dec_deg))
    bad |= (ra_deg < 0) | (ra_deg > 360) | (np.abs(dec_deg) > 90)
    if bad.any():
        i = int(np.argmax(bad))
        reason = _check_range(float(ra_deg[i]), float(dec_deg[i]))
        raise CoordinateError(
            f"row {first_row + i}: position {columns[0]}={ra[i]!r} {columns[1]}={dec[i]!r} "
            f"is {reason}"
        )
    return np.mod(ra_deg, 360.0), dec_deg


def _as_float(
    values: Sequence[Any], axis: Axis, first_row: int, column: str
) -> npt.NDArray[np.float64]:
    try:
        # Fast path: numeric columns (and None, which becomes NaN and is caught later).
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        try:
            out[i] = parse_angle(value, axis)
        except ValueError as e:
            raise CoordinateError(
                f"row {first_row + i}: cannot read {axis} {value!r} in column {column!r}: {e}"
            ) from None
    return out
