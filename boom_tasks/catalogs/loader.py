"""Load a catalog file into MongoDB, in batches, idempotently and resumably.

Steps:

1. before writing anything: refuse a name of the broker's own collections
   (:mod:`.names`) or of an existing collection that is not a catalog (even with
   ``replace``), open the file, refuse repeated column names, find the ra/dec
   (and id) columns and, with an id column, refuse an id repeated in the file;
2. compare with ``catalogs_meta``: an identical earlier load is resumed from its
   checkpoint, a different one is refused unless ``replace``;
3. for each batch: read ra/dec as degrees (sexagesimal accepted), compute the
   HEALPix pixels, build the documents and insert them unordered, counting
   duplicate ``_id`` values as already loaded (code 11000), then move the
   checkpoint;
4. build the B-tree index on the pixel field and the 2dsphere index, and mark
   the catalog complete (or partial, when ``limit`` stopped it early); a load
   stopped by a bad row is marked failed, with the reason.

``_id`` is the row number in the file, or the ``id`` column: a second run writes
the same ``_id`` values, so it can never duplicate a row. Ids are checked unique
in the file first, so an existing ``_id`` can only be a row an earlier run wrote.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, GEOSPHERE, IndexModel
from pymongo.collection import Collection
from pymongo.database import Database
from tqdm import tqdm

from boom_tasks.catalogs import meta
from boom_tasks.catalogs.coords import detect_columns, to_degrees
from boom_tasks.catalogs.documents import build_documents, check_unique_ids, field_names
from boom_tasks.catalogs.errors import CatalogError
from boom_tasks.catalogs.names import check_name
from boom_tasks.catalogs.readers import Batch, CatalogReader, detect_format, open_catalog
from boom_tasks.errors import PermanentError
from boom_tasks.services.mongo import create_missing_indexes, insert_new, mongo_errors
from boom_tasks.sky.healpix import DEFAULT_ORDER, HPX_FIELD, pixel_ids

if TYPE_CHECKING:
    from boom_tasks.settings import Settings

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


def _prepare(
    db: Database, name: str, reader: CatalogReader, options: LoadOptions
) -> tuple[dict[str, Any], int]:
    """Check all that can be checked before writing; return the plan and the rows to skip.

    Raises
    ------
    CatalogError
        For missing columns, repeated ids, a collection that is not a catalog, or
        a conflicting earlier load.
    """
    fmt = (options.fmt or detect_format(reader.path)).lower()
    plan = _plan(reader, fmt, options)
    if options.id is not None:
        check_unique_ids(_limited(reader.batches(options.batch_size), options.limit), options.id)
    # Before --replace drops anything: only a catalog boom loaded may be replaced.
    meta.refuse_foreign(db, name)
    if options.replace:
        meta.forget(db, name)
    skip = meta.resume_point(db, name, plan)
    if skip:
        logger.info("catalog %s: resuming after row %d", name, skip)
    return plan, skip


def _index_and_count(db: Database, name: str) -> int:
    """Build the catalog's indexes; return its number of documents."""
    logger.info("catalog %s: building the HEALPix and 2dsphere indexes", name)
    _ensure_indexes(db[name])
    with mongo_errors(f"counting catalog {name}"):
        return db[name].estimated_document_count()


def load_catalog(
    db: Database,
    name: str,
    path: str | Path,
    options: LoadOptions | None = None,
    *,
    settings: Settings | None = None,
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
    settings
        The broker's settings, for the collection names it configures (which no
        catalog may take); None assumes the default names.

    Returns
    -------
    LoadReport
        Rows read and inserted, timings, the collection's final row count.

    Raises
    ------
    CatalogError
        For a name of the broker's or of a collection that is not a catalog, a
        missing or unreadable file, an unknown format, missing or repeated columns,
        repeated ids, an unparsable position (naming the row; the catalog is then
        recorded as ``failed``) or a conflicting earlier load.
    """
    options = options or LoadOptions()
    check_name(name, settings)
    reader = open_catalog(path, options.fmt)
    plan, skip = _prepare(db, name, reader, options)
    meta.start(db, name, plan, skip)
    started = time.monotonic()
    try:
        read, inserted = _write_rows(db, name, reader, plan, skip, options)
    except CatalogError as e:
        # Recorded, so `boom catalogs list` does not show a dead load as still loading.
        meta.fail(db, name, str(e))
        raise
    indexed = time.monotonic()
    rows = _index_and_count(db, name)
    loaded = skip + read
    complete = reader.num_rows is not None and loaded >= reader.num_rows
    meta.finish(db, name, complete=complete, rows=rows)
    done = time.monotonic()
    return LoadReport(name, skip, read, inserted, rows, complete, indexed - started, done - indexed)
