"""Download a night of a survey's public alert archive, once, into a local cache.

The file is written to ``<name>.part`` and renamed only when complete, so an
interrupted download is never mistaken for a night with fewer alerts; the next
attempt starts again from scratch (the archive does not promise range requests).
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from boom_tasks.replay.archive import ArchiveError
from boom_tasks.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

#: Cache of downloaded nights; ``.local/`` is ignored by git.
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".local" / "archive"

#: Seconds without a byte from the server before the download is abandoned.
TIMEOUT_S = 60.0

#: Bytes read and written per step: large enough to be fast, small enough for a live bar.
CHUNK_BYTES = 1 << 20


def fetch_file(
    name: str,
    base_url: str,
    cache_dir: Path | str | None = None,
    *,
    progress: bool = True,
) -> Path:
    """Return the local path of one archive file, downloading it on first use.

    Parameters
    ----------
    name
        The file's name in the archive (e.g. ``ztf_public_20240617.tar.gz``).
    base_url
        Folder URL of the archive (any scheme urllib opens, e.g. ``file://``).
    cache_dir
        Folder of downloaded nights; defaults to ``DEFAULT_CACHE_DIR``.
    progress
        Show a progress bar (it hides itself anyway when stderr is not a terminal).

    Returns
    -------
    Path
        The complete tarball in the cache.

    Raises
    ------
    ArchiveError
        If the download fails or ends before the announced size.
    """
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    target = cache / name
    if target.is_file():
        log.info("using cached %s", target)
        return target
    cache.mkdir(parents=True, exist_ok=True)
    part = target.with_name(name + ".part")
    url = f"{base_url.rstrip('/')}/{name}"
    try:
        _download(url, part, progress)
    except BaseException:
        part.unlink(missing_ok=True)  # a partial file is useless: no resume
        raise
    os.replace(part, target)  # atomic: the night appears complete or not at all
    return target


def _download(url: str, part: Path, progress: bool) -> None:
    """Copy ``url`` into ``part``, checking the size the server announced."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length else None
            with (
                part.open("wb") as out,
                tqdm(
                    total=expected,
                    unit="B",
                    unit_scale=True,
                    desc=part.name.removesuffix(".part"),
                    disable=None if progress else True,
                ) as bar,
            ):
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as e:
        raise ArchiveError(f"cannot download {url}: {e}") from None
    got = part.stat().st_size
    if expected is not None and got != expected:
        raise ArchiveError(f"download of {url} ended after {got} of {expected} bytes")
