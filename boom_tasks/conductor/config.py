"""Settings of the night conductor (section ``conductor``)."""

from __future__ import annotations

from pydantic import Field

from boom_tasks.config_base import Section


class ConductorSettings(Section):
    """When a night is over, and how long its bookkeeping is kept."""

    #: Seconds without a new alert on a night's topic before the night may be closed
    #: (ZTF observes ~10 h a night with gaps of minutes; half an hour of silence is an end).
    quiet_s: float = Field(1800.0, gt=0)
    #: Days the per-night counters stay in Valkey: long enough to rebuild a report
    #: on demand for last week's nights, small enough to bound memory.
    keep_days: int = Field(8, ge=1)
    #: Candids named per stage where a flagged night's alerts stopped (the rest counted).
    named_candids: int = Field(50, ge=1)
    #: Database of the first-run demo (``boom night --demo``, ``./ops/night.sh``): dropped
    #: and refilled on every demo run, so it must never be a production database.
    demo_database: str = "boom_demo"
    #: Folder of the catalog files the demo slices (relative to the project root).
    demo_catalogs_dir: str = "../shared/data/catalogs"
    #: Catalog name -> file in ``demo_catalogs_dir``; the demo loads those the survey
    #: crossmatches with, only their rows near the night's alerts.
    demo_catalogs: dict[str, str] = {
        "gcvs": "gcvs.parquet",
        "vsx": "vsx.parquet",
        "mangrove": "mangrove_filtered.parquet",
    }
