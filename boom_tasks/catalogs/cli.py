"""``boom catalogs``: load catalog files into MongoDB and list the loaded ones.

``boom_tasks.cli`` calls :func:`register` on its sub-parsers and :func:`run` with
the parsed arguments of a ``catalogs`` command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from boom_tasks import logs
from boom_tasks.catalogs.readers import FORMATS
from boom_tasks.entry import EXIT_OK, whole_number
from boom_tasks.sky.healpix import DEFAULT_ORDER, MAX_ORDER


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``catalogs`` command (``load``, ``list``) to ``boom``'s sub-parsers.

    Parameters
    ----------
    subparsers
        What ``ArgumentParser.add_subparsers`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The ``catalogs`` parser; its commands set ``catalogs_command``.
    """
    parser = subparsers.add_parser("catalogs", help="load and list archival catalogs")
    parser.add_argument("--log-level", default="INFO", type=logs.level_name)
    sub = parser.add_subparsers(dest="catalogs_command", required=True)
    load = sub.add_parser("load", help="load a catalog file (Parquet, CSV, FITS) into MongoDB")
    load.add_argument("name", help="catalog name: the MongoDB collection")
    load.add_argument("file", type=Path, help="the catalog file")
    load.add_argument("--ra", help="right ascension column (default: detected)")
    load.add_argument("--dec", help="declination column (default: detected)")
    load.add_argument("--format", choices=FORMATS, help="file format (default: from the name)")
    load.add_argument("--id", help="column whose value becomes _id (default: row number)")
    load.add_argument("--batch-size", type=whole_number(1), help="rows per insert (default: 5000)")
    load.add_argument(
        "--order",
        type=whole_number(0, MAX_ORDER),
        default=DEFAULT_ORDER,
        help="HEALPix order of the pixel field",
    )
    load.add_argument("--limit", type=whole_number(1), help="load only the first N rows")
    load.add_argument("--replace", action="store_true", help="drop an existing catalog first")
    sub.add_parser("list", help="list loaded catalogs with their rows and indexes")
    return parser


def _load(args: argparse.Namespace, out: TextIO) -> int:
    from boom_tasks.catalogs.loader import DEFAULT_BATCH_SIZE, LoadOptions, load_catalog
    from boom_tasks.services.mongo import get_catalog_db
    from boom_tasks.settings import get_settings

    options = LoadOptions(
        ra=args.ra,
        dec=args.dec,
        id=args.id,
        fmt=args.format,
        batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
        order=args.order,
        limit=args.limit,
        replace=args.replace,
        progress=True,
    )
    settings = get_settings()
    r = load_catalog(
        get_catalog_db(settings.mongo), args.name, args.file, options, settings=settings
    )
    seconds = r.insert_seconds + r.index_seconds
    rate = r.rows_read / seconds if seconds > 0 else 0.0
    print(
        f"{r.name}: {r.rows_read} rows read ({r.inserted} new, {r.rows_read - r.inserted} "
        f"already present), {r.resumed_from} skipped as loaded before; {r.rows} rows in the "
        f"collection, {'complete' if r.complete else 'partial'}; "
        f"{seconds:.1f} s ({rate:.0f} rows/s, indexes {r.index_seconds:.1f} s)",
        file=out,
    )
    return EXIT_OK


def _list(out: TextIO) -> int:
    from boom_tasks.catalogs.meta import list_catalogs
    from boom_tasks.services.mongo import get_catalog_db
    from boom_tasks.settings import get_settings

    infos = list_catalogs(get_catalog_db(get_settings().mongo))
    if not infos:
        print("no catalogs loaded (boom catalogs load NAME FILE)", file=out)
        return EXIT_OK
    width = max(len(i.name) for i in infos)
    print(f"{'name':<{width}}  {'rows':>10}  {'status':<8}  order  indexes", file=out)
    for i in infos:
        print(
            f"{i.name:<{width}}  {i.rows:>10}  {i.status:<8}  {i.hpx_order:>5}  "
            f"{', '.join(i.indexes)}" + (f"  ({i.error})" if i.error else ""),
            file=out,
        )
    return EXIT_OK


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run a parsed ``boom catalogs`` command; return the exit status.

    Raises
    ------
    BoomError
        (``CatalogError`` and the MongoDB errors) for ``boom`` to print.
    """
    out = out or sys.stdout
    if args.catalogs_command == "load":
        return _load(args, out)
    return _list(out)
