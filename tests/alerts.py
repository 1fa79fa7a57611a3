"""Helpers to read the real ZTF packets in ../shared/data (never copied into the repo)."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro

#: Real ZTF packets shared by the team, beside the repository (not inside it).
ZTF_DATA = (Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ztf").resolve()


def packet_paths(folder: str | None = None) -> list[Path]:
    """Every .avro file under ZTF_DATA (or one of its folders), sorted."""
    root = ZTF_DATA / folder if folder else ZTF_DATA
    return sorted(root.rglob("*.avro"))


@lru_cache(maxsize=4096)
def read_packet(path: Path) -> bytes:
    return path.read_bytes()


def reference_record(packet: bytes) -> dict[str, Any]:
    """Decode the first record with fastavro's own reader: the independent reference."""
    return next(iter(fastavro.reader(io.BytesIO(packet))))  # type: ignore[arg-type]
