"""The first-run demo (``boom night --demo``, what ``./ops/night.sh`` runs).

Step 1: switch this process and its children (workers, bridge) to the demo
        database (``conductor.demo_database``), and empty it: the demo never
        touches a production database.
Step 2: load slices of the shipped catalogs: only the rows near the night's
        alerts (within each catalog's crossmatch radius), so loading takes
        seconds and every match the full catalog would give is still found.
Step 3: add the example filters of ``docs/filters.md`` for this survey, active.
Step 4: forget the night's earlier bookkeeping, so its report is this run's.
The night is then replayed as ``boom night`` always does, and ends with the
conductor's report (:mod:`boom_tasks.conductor.summary`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from boom_tasks.catalogs import LoadOptions, load_catalog
from boom_tasks.conductor.counters import STAGES, prefix
from boom_tasks.config_base import PROJECT_ROOT, project_path
from boom_tasks.errors import AlertRejected, BoomError, ConfigError
from boom_tasks.filter.errors import FilterInvalid
from boom_tasks.filter.store import add_filter, set_active
from boom_tasks.services.mongo import get_catalog_db, get_client, get_db
from boom_tasks.services.valkey import get_client as valkey_client
from boom_tasks.settings import Settings, get_settings
from boom_tasks.sky.healpix import cones_pixels, order_for_radius, pixel_ids
from boom_tasks.surveys import Survey

log = logging.getLogger(__name__)

#: The document whose ``json`` blocks are the example filters.
FILTER_DOCS = PROJECT_ROOT / "docs" / "filters.md"
#: Column pairs tried, in order, as a catalog file's position (degrees).
POSITION_COLUMNS = (("ra", "dec"), ("RAJ2000", "DEJ2000"))


def use_demo_database(settings: Settings) -> Settings:
    """Point this process and its future children at the demo database; return its settings.

    Raises
    ------
    ConfigError
        If the demo database is the configured database (it is emptied on every run).
    """
    demo = settings.conductor.demo_database
    if demo in {settings.mongo.database, settings.mongo.catalog_database}:
        raise ConfigError(
            f"conductor.demo_database is {demo!r}, the broker's own database: the demo empties "
            "its database on every run; give it a name of its own"
        )
    # Children (workers, bridge) read their settings from the environment at start.
    os.environ["BOOM_MONGO__DATABASE"] = demo
    os.environ["BOOM_MONGO__CATALOG_DATABASE"] = demo
    get_settings.cache_clear()
    settings = get_settings()
    get_client(settings.mongo).drop_database(demo)
    return settings


def night_positions(survey: Survey, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return the positions (degrees) of the night's parsable alerts."""
    now = dt.datetime.now(dt.UTC)
    ra, dec = [], []
    for _, packet in survey.replay.iter_packets(source):
        try:
            docs = survey.parse_packet(packet, now)
        except AlertRejected:
            continue  # ingest quarantines it; it matches nothing
        ra.append(docs.ra)
        dec.append(docs.dec)
    return np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64)


def _position_columns(table_schema: pa.Schema) -> tuple[str, str]:
    for ra, dec in POSITION_COLUMNS:
        if ra in table_schema.names and dec in table_schema.names:
            return ra, dec
    raise BoomError(f"no position columns among {table_schema.names}")


def catalog_slice(path: Path, ra: np.ndarray, dec: np.ndarray, radius_arcsec: float) -> pa.Table:
    """Return the rows of catalog ``path`` within ``radius_arcsec`` of any position.

    Rows are kept by HEALPix pixel, at an order whose pixels are at least the radius
    wide: every pixel a cone touches is kept whole, so no match is ever lost.
    """
    table = pq.read_table(path)
    ra_col, dec_col = _position_columns(table.schema)
    order = order_for_radius(radius_arcsec)
    covered, _ = cones_pixels(ra, dec, radius_arcsec, order)
    rows = pixel_ids(table[ra_col].to_numpy(), table[dec_col].to_numpy(), order)
    return table.filter(pa.array(np.isin(rows, np.unique(covered))))


def load_catalog_slices(settings: Settings, survey: Survey, source: Path) -> dict[str, int]:
    """Load, for each catalog the survey crossmatches with, its rows near the night's alerts."""
    ra, dec = night_positions(survey, source)
    folder = project_path(settings.conductor.demo_catalogs_dir)
    db = get_catalog_db(settings.mongo)
    loaded = {}
    with tempfile.TemporaryDirectory(prefix="boom-demo-") as tmp:
        for spec in settings.crossmatch.get(survey.name, []):
            name = settings.conductor.demo_catalogs.get(spec.catalog)
            if name is None or not (folder / name).exists() or len(ra) == 0:
                log.warning("demo: no file for catalog %s; it is skipped", spec.catalog)
                continue
            part = catalog_slice(folder / name, ra, dec, spec.radius)
            path = Path(tmp) / f"{spec.catalog}.parquet"
            pq.write_table(part, path)
            loaded[spec.catalog] = load_catalog(db, spec.catalog, path, LoadOptions()).rows
    return loaded


def example_filters(text: str, survey: Survey) -> list[tuple[str, list[dict[str, Any]]]]:
    """Return ``(name, pipeline)`` of each example of ``docs/filters.md`` for ``survey``.

    An example is a ```` ```json ```` block holding a list; it is named by the last
    quoted phrase before it (``"fast transient"``), else by its number. An example
    reading another survey's matches of this one (``survey_matches.<SURVEY>``) is
    written for the other survey and left out.
    """
    found = []
    for n, match in enumerate(re.finditer(r"```json\n(.*?)```", text, re.S), start=1):
        try:
            pipeline = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue
        if not isinstance(pipeline, list) or f"survey_matches.{survey.name}" in match.group(1):
            continue
        quoted = re.findall(r'"([^"\n]{3,40})"', text[max(0, match.start() - 400) : match.start()])
        found.append((quoted[-1] if quoted else f"example {n}", pipeline))
    return found


def add_example_filters(settings: Settings, survey: Survey) -> list[str]:
    """Store and activate the example filters in the demo database; return their names."""
    db = get_db(settings.mongo)
    names = []
    for name, pipeline in example_filters(FILTER_DOCS.read_text(), survey):
        try:
            fid = add_filter(
                db,
                name=name,
                survey=survey.name,
                pipeline=pipeline,
                programids=[0, 1, 2, 3],
                description="example of docs/filters.md (demo)",
                aux_collection=survey.aux,
            )
        except FilterInvalid as e:
            log.warning("demo: example filter %r refused: %s", name, e)
            continue
        set_active(db, fid, True)
        names.append(name)
    return names


def forget_night_records(settings: Settings, survey: Survey, night: str) -> None:
    """Delete the night's per-stage records, so the report counts this run alone."""
    client = valkey_client(settings.valkey)
    base = f"{prefix(survey.name)}:{night}"
    keys = [f"{base}:{stage}" for stage in STAGES]
    keys += list(client.scan_iter(match=f"{base}:candids:*", count=1000))
    client.delete(*keys)


def prepare(settings: Settings, survey: Survey, night: str, source: Path) -> Settings:
    """Run the demo's steps 1-4 (module docstring); return the demo's settings."""
    settings = use_demo_database(settings)
    print(f"demo: database {settings.mongo.database} (emptied; the broker's own is untouched)")
    for catalog, rows in load_catalog_slices(settings, survey, source).items():
        print(f"demo: catalog {catalog}: {rows} rows near the night's alerts loaded")
    for name in add_example_filters(settings, survey):
        print(f"demo: example filter {name!r} of docs/filters.md added, active")
    forget_night_records(settings, survey, night)
    return settings
