"""Read the raw Avro packets of one night, from a tarball or a folder.

ZTF's public archive publishes each night as ``ztf_public_YYYYMMDD.tar.gz``:
one Avro object-container file per alert. A tarball is streamed member by
member (``r|gz``), never extracted to disk: a busy night is tens of gigabytes.
A folder of ``*.avro`` files (searched recursively) is read in sorted order, so
two replays of the same folder produce the same stream.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from boom_tasks.errors import BoomError

#: Suffix of a packet, in a folder or a tarball.
PACKET_SUFFIX = ".avro"

#: Suffixes recognised as a night's tarball.
TARBALL_SUFFIXES = (".tar.gz", ".tgz")


class ArchiveError(BoomError):
    """A night's source is missing, is not a tarball or folder, or is truncated."""


def is_tarball(source: Path) -> bool:
    """Return whether ``source`` is a file named like a gzipped tarball."""
    return source.is_file() and source.name.endswith(TARBALL_SUFFIXES)


def iter_packets(source: Path | str) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, packet)`` for every Avro packet of a night.

    Parameters
    ----------
    source
        A ``.tar.gz`` of the public archive, or a folder holding ``*.avro`` files
        at any depth.

    Yields
    ------
    tuple of (str, bytes)
        The packet's file name (without folders) and its raw bytes, unmodified.

    Raises
    ------
    ArchiveError
        If ``source`` is neither a tarball nor a folder, or the tarball is
        corrupt or truncated (raised when the damaged part is reached).
    """
    source = Path(source)
    if source.is_dir():
        return _iter_folder(source)
    if is_tarball(source):
        return _iter_tarball(source)
    what = "does not exist" if not source.exists() else "is neither a folder nor a .tar.gz"
    raise ArchiveError(f"{source} {what}: give a folder of .avro packets or a night's .tar.gz")


def count_packets(source: Path | str) -> int | None:
    """Return how many packets a folder holds, or ``None`` for a tarball.

    Counting a tarball's members means decompressing it all, so a progress bar
    over a tarball goes without a total rather than read the night twice.
    """
    source = Path(source)
    return len(_folder_paths(source)) if source.is_dir() else None


def _folder_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(f"*{PACKET_SUFFIX}") if p.is_file())


def _iter_folder(folder: Path) -> Iterator[tuple[str, bytes]]:
    for path in _folder_paths(folder):
        yield path.name, path.read_bytes()


def _iter_tarball(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        # Stream mode: members are read in order and never seeked back to.
        with tarfile.open(path, mode="r|gz") as tar:
            for member in tar:
                if not (member.isfile() and member.name.endswith(PACKET_SUFFIX)):
                    continue
                fo = tar.extractfile(member)
                if fo is None:  # pragma: no cover - isfile() members always have data
                    continue
                yield PurePosixPath(member.name).name, fo.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        # An interrupted download ends mid-stream: say so instead of a gzip traceback.
        raise ArchiveError(f"cannot read {path} (corrupt or truncated?): {e}") from None
