"""Where archived ZTF nights come from: the public archive, one tarball a night."""

from __future__ import annotations

from pathlib import Path

from boom_tasks.replay.archive import count_packets, iter_packets
from boom_tasks.replay.download import fetch_file
from boom_tasks.surveys.base import ReplaySource, parse_date

#: Where ZTF's public nights are published, one ``ztf_public_YYYYMMDD.tar.gz`` each.
ARCHIVE_URL = "https://ztf.uw.edu/alerts/public"


def night_filename(date: str) -> str:
    """Return the archive's file name of one night (``ztf_public_YYYYMMDD.tar.gz``)."""
    return f"ztf_public_{parse_date(date)}.tar.gz"


def fetch_night(
    date: str,
    cache_dir: Path | str | None = None,
    *,
    base_url: str = ARCHIVE_URL,
    progress: bool = True,
) -> Path:
    """Return the local path of one night's tarball, downloading it on first use.

    Parameters
    ----------
    date
        Night as ``YYYYMMDD``.
    cache_dir
        Folder of downloaded nights (default: ``.local/archive``).
    base_url
        Folder URL of the archive (any scheme urllib opens, e.g. ``file://``).
    progress
        Show a progress bar.

    Raises
    ------
    ValueError
        If ``date`` is not a ``YYYYMMDD`` date.
    ArchiveError
        If the download fails or ends before the announced size.
    """
    return fetch_file(night_filename(date), base_url, cache_dir, progress=progress)


#: ZTF packets are Avro object-container files, sent to Kafka unmodified.
REPLAY = ReplaySource(
    iter_packets=iter_packets, count_packets=count_packets, fetch_night=fetch_night
)
