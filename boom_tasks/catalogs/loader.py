"""Load a catalog file into MongoDB, in batches, idempotently and resumably.

Steps:

1. open the file and find the ra/dec (and id) columns, before writing anything;
2. compare with ``catalogs_meta``: an identical earlier load is resumed from its
   checkpoint, a different one is refused unless ``replace``;
3. for each batch: read ra/dec as degrees (sexagesimal accepted), compute the
   HEALPix pixels, build the documents and insert them unordered, counting
   duplicate ``_id`` values as already loaded (code 11000), then move the
   checkpoint;
4. build the B-tree index on the pixel field and the 2dsphere index, and mark
   the catalog complete (or partial, when ``limit`` stopped it early).

``_id`` is the row number in the file, or the ``id`` column: a second run writes
the same ``_id`` values, so it can never duplicate a row.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, GEOSPHERE, IndexModel
from pymongo.collection import Collection
from pymongo.database import Database
from tqdm import tqdm

from boom_tasks.catalogs import meta
from boom_tasks.catalogs.coords import detect_columns, to_degrees
from boom_tasks.catalogs.documents import build_documents, field_names
from boom_tasks.catalogs.errors import CatalogError
from boom_tasks.catalogs.readers import Batch, CatalogReader, detect_format, open_catalog
from boom_tasks.errors import PermanentError
from boom_tasks.services.mongo import create_missing_indexes, insert_new, mongo_errors
from boom_tasks.sky.healpix import DEFAULT_ORDER, HPX_FIELD, pixel_ids

logger = logging.getLogger(__name__)

#: Rows per insert. Large enough that a round trip is small next to the write
#: (SecantusDB inserts ~20,000 un-indexed documents/s), small enough that a
#: batch of wide rows stays far below the 48 MB message limit.
DEFAULT_BATCH_SIZE = 5_000

#: Indexes built after the rows are in: building the 2dsphere index once is ~2x
#: faster on SecantusDB than updating it with every insert (and on MongoDB too).
CATALOG_INDEXES = [
    IndexModel([(HPX_FIELD, ASCENDING)]),
    IndexModel([("coordinates.radec_geojson", GEOSPHERE)]),
]

#: Catalog names must be plain collection names.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,119}")


@dataclass(frozen=True)
class LoadOptions:
    """How to read and load a catalog file; None means detect."""

    ra: str | None = None
    dec: str | None = None
    id: str | None = None
    fmt: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    #: HEALPix order of the pixel field (see :data:`boom_tasks.sky.healpix.DEFAULT_ORDER`).
    order: int = DEFAULT_ORDER
    #: Load only the first ``limit`` rows of the file (tests, benchmarks).
    limit: int | None = None
    #: Drop an existing catalog of the same name first.
    replace: bool = False
    progress: bool = False


@dataclass(frozen=True)
class LoadReport:
    """What one load did."""

    name: str
    #: Rows skipped because an earlier run had loaded them (the checkpoint).
    resumed_from: int
    #: Rows read and written (or found present) by this run.
    rows_read: int
    #: Documents inserted by this run; ``rows_read - inserted`` had an existing ``_id``.
    inserted: int
    #: Documents in the collection at the end.
    rows: int
    complete: bool
    insert_seconds: float
    index_seconds: float


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name) or name.startswith("system.") or name == meta.META_COLLECTION:
        raise CatalogError(
            f"invalid catalog name {name!r}: use letters, digits, '_', '-' or '.' "
            f"(not {meta.META_COLLECTION!r} nor system.*)"
        )


def _plan(reader: CatalogReader, fmt: str, options: LoadOptions) -> dict[str, Any]:
    """Return the meta document describing this load (before progress fields)."""
    ra, dec = detect_columns(reader.columns, options.ra, options.dec)
    if options.id is not None and options.id not in reader.columns:
        raise CatalogError(f"no id column {options.id!r}; the columns are: {reader.columns}")
    stat = reader.path.stat()
    fields = field_names(reader.columns)
    return {
        "source": {
            "path": str(reader.path.resolve()),
            "format": fmt,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        },
        "ra_column": ra,
        "dec_column": dec,
        "id_column": options.id,
        "hpx_field": HPX_FIELD,
        "hpx_order": options.order,
        "rows_in_file": reader.num_rows,
        "fields": [{"column": c, "field": f} for c, f in fields.items()],
    }


def _insert(coll: Collection, docs: list[dict[str, Any]]) -> int:
    """Insert ``docs`` unordered; return how many were new (the rest already existed)."""
    try:
        return len(insert_new(coll, docs, f"loading catalog {coll.name}"))
    except PermanentError as e:
        raise CatalogError(f"cannot write catalog {coll.name}: {e}") from None


def _ensure_indexes(coll: Collection) -> None:
    """Create the catalog indexes that do not exist yet."""
    create_missing_indexes(coll, CATALOG_INDEXES)


def _limited(batches: Iterator[Batch], limit: int | None) -> Iterator[Batch]:
    for batch in batches:
        if limit is not None and batch.start + len(batch) > limit:
            keep = max(limit - batch.start, 0)
            if keep:
                yield Batch(batch.start, {k: v[:keep] for k, v in batch.columns.items()})
            return
        yield batch


def _write_rows(
    db: Database,
    name: str,
    reader: CatalogReader,
    plan: dict[str, Any],
    skip: int,
    options: LoadOptions,
) -> tuple[int, int]:
    """Write the rows after ``skip``; return (rows read, documents inserted)."""
    coll = db[name]
    fields = {f["column"]: f["field"] for f in plan["fields"]}
    columns = (plan["ra_column"], plan["dec_column"])
    total = (
        reader.num_rows
        if options.limit is None
        else min(options.limit, reader.num_rows or options.limit)
    )
    read = inserted = 0
    with tqdm(
        total=total, initial=skip, unit="rows", desc=name, disable=not options.progress
    ) as bar:
        for batch in _limited(reader.batches(options.batch_size, skip), options.limit):
            ra, dec = to_degrees(
                batch.columns[columns[0]],
                batch.columns[columns[1]],
                first_row=batch.start,
                columns=columns,
            )
            docs = build_documents(
                batch, fields, (ra, dec), pixel_ids(ra, dec, options.order), options.id
            )
            inserted += _insert(coll, docs)
            read += len(batch)
            meta.checkpoint(db, name, batch.start + len(batch))
            bar.update(len(batch))
    return read, inserted


def load_catalog(
    db: Database, name: str, path: str | Path, options: LoadOptions | None = None
) -> LoadReport:
    """Load catalog file ``path`` into collection ``name`` of ``db``.

    Parameters
    ----------
    db
        The database.
    name
        Catalog name: the collection and its ``catalogs_meta`` ``_id``.
    path
        Parquet, CSV or FITS file.
    options
        Columns, format, batch size, HEALPix order, limit; detected or defaults if None.

    Returns
    -------
    LoadReport
        Rows read and inserted, timings, the collection's final row count.

    Raises
    ------
    CatalogError
        For a missing or unreadable file, an unknown format, missing columns, an
        unparsable position (naming the row) or a conflicting earlier load.
    """
    options = options or LoadOptions()
    _check_name(name)
    reader = open_catalog(path, options.fmt)
    fmt = (options.fmt or detect_format(reader.path)).lower()
    plan = _plan(reader, fmt, options)
    if options.replace:
        meta.forget(db, name)
    skip = meta.resume_point(db, name, plan)
    if skip:
        logger.info("catalog %s: resuming after row %d", name, skip)
    meta.start(db, name, plan, skip)
    started = time.monotonic()
    read, inserted = _write_rows(db, name, reader, plan, skip, options)
    indexed = time.monotonic()
    logger.info("catalog %s: building the HEALPix and 2dsphere indexes", name)
    _ensure_indexes(db[name])
    with mongo_errors(f"counting catalog {name}"):
        rows = db[name].estimated_document_count()
    loaded = skip + read
    complete = reader.num_rows is not None and loaded >= reader.num_rows
    meta.finish(db, name, complete=complete, rows=rows)
    done = time.monotonic()
    return LoadReport(name, skip, read, inserted, rows, complete, indexed - started, done - indexed)
