"""Catalog rows as MongoDB documents.

Every column is kept under a field name MongoDB can query (dots would read as
sub-documents, a leading ``$`` as an operator), missing values are left out
rather than stored as NaN or null (so ``$exists`` means "has a value"), and
fixed-width padding is stripped from strings. The position is added as
``coordinates.radec_geojson`` and the nested HEALPix pixel id as ``hpx``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from bson.decimal128 import Decimal128

from boom_tasks.alert.base import radec_geojson
from boom_tasks.catalogs.errors import CatalogError
from boom_tasks.catalogs.readers import Batch
from boom_tasks.sky.healpix import HPX_FIELD

#: Strings meaning "no value". "None" and "nan" are what a pandas ``astype(str)``
#: leaves in place of missing values (Mangrove's names are full of "None").
NULL_STRINGS = frozenset({"", "None", "none", "nan", "NaN", "NULL", "null"})

#: Field names the loader writes itself; a column with one of these names is renamed.
RESERVED_FIELDS = frozenset({"_id", "coordinates", HPX_FIELD})


class _Absent:
    """Marker for a value that is left out of the document."""


ABSENT = _Absent()


def field_names(columns: Sequence[str]) -> dict[str, str]:
    """Return the MongoDB field name of each column.

    Dots are removed (``R.A.`` becomes ``RA``), a leading ``$`` is dropped,
    surrounding spaces are stripped, reserved names get a ``_col`` suffix and
    clashes a numeric suffix, so every column keeps a distinct field.
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for i, column in enumerate(columns):
        name = column.replace(".", "").strip().lstrip("$").strip() or f"column{i}"
        if name in RESERVED_FIELDS:
            name += "_col"
        base, k = name, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        names[column] = name
    return names


def plain(value: Any) -> Any:
    """Return ``value`` as a BSON-ready Python value, or :data:`ABSENT` if it is missing.

    Numpy scalars and arrays become Python numbers and lists, NaN, None and
    :data:`NULL_STRINGS` become absent, strings lose surrounding spaces. Inside
    lists a missing value becomes None so positions are kept.
    """
    if value is None:
        return ABSENT
    if isinstance(value, float):
        return ABSENT if math.isnan(value) else value
    if isinstance(value, str):
        text = value.strip()
        return ABSENT if text in NULL_STRINGS else text
    if isinstance(value, np.generic | np.ndarray):
        return plain(value.tolist())
    if isinstance(value, list | tuple):
        return [None if (v := plain(item)) is ABSENT else v for item in value]
    if isinstance(value, dict):
        return {k: v for k, item in value.items() if (v := plain(item)) is not ABSENT}
    if isinstance(value, decimal.Decimal):
        return Decimal128(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return value


def build_documents(
    batch: Batch,
    fields: dict[str, str],
    position: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
    pixels: npt.NDArray[np.int64],
    id_column: str | None = None,
) -> list[dict[str, Any]]:
    """Return the documents of one batch of rows.

    Parameters
    ----------
    batch
        The rows.
    fields
        Field name of each column (:func:`field_names`).
    position
        Right ascensions and declinations of the rows, in degrees.
    pixels
        Nested HEALPix pixel id of each row.
    id_column
        Column whose value becomes ``_id``; None uses the row number in the file,
        so loading the same file again writes the same ``_id`` values.

    Raises
    ------
    CatalogError
        If a row has no value in ``id_column``.
    """
    columns = [(fields[c], batch.columns[c]) for c in fields]
    ids = batch.columns[id_column] if id_column else None
    ra, dec = position
    docs = []
    for i in range(len(batch)):
        doc: dict[str, Any] = {"_id": batch.start + i}
        if ids is not None:
            doc["_id"] = plain(ids[i])
            if doc["_id"] is ABSENT:
                raise CatalogError(f"row {batch.start + i}: no value in id column {id_column!r}")
        for name, values in columns:
            if (value := plain(values[i])) is not ABSENT:
                doc[name] = value
        doc["coordinates"] = {"radec_geojson": radec_geojson(float(ra[i]), float(dec[i]))}
        doc[HPX_FIELD] = int(pixels[i])
        docs.append(doc)
    return docs


def _id_key(value: Any) -> Any:
    """Return ``value`` as a set key that tells apart what MongoDB tells apart as ``_id``."""
    # True == 1 in Python, not as a MongoDB _id; 1 and 1.0 are the same in both.
    return (type(value) is bool, value) if isinstance(value, Hashable) else repr(value)


def check_unique_ids(batches: Iterable[Batch], id_column: str) -> None:
    """Refuse a file in which two rows have the same value in ``id_column``.

    Run before anything is written: a second row with an id already seen would
    otherwise be taken for a row an earlier load had written, and dropped.

    Parameters
    ----------
    batches
        Every row that will be loaded.
    id_column
        The column whose value becomes ``_id``.

    Raises
    ------
    CatalogError
        Naming the first repeated id and the two rows that have it.
    """
    first_row: dict[Any, int] = {}
    for batch in batches:
        for i, raw in enumerate(batch.columns[id_column]):
            value = plain(raw)
            if value is ABSENT:
                continue  # build_documents names the row when it gets there
            row = batch.start + i
            seen = first_row.setdefault(_id_key(value), row)
            if seen != row:
                raise CatalogError(
                    f"id {value!r} of column {id_column!r} is on rows {seen} and {row}: "
                    "ids must be unique in the file"
                )
