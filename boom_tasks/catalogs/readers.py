"""Catalog files read as batches of columns: Parquet, CSV and FITS tables.

A reader knows its column names and (when cheap) its row count up front, so the
loader can check the coordinate columns before writing anything and draw a
progress bar. Batches carry plain Python values (no numpy scalars) and the row
number of their first row, which is the row's default ``_id``.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from boom_tasks.catalogs.errors import CatalogError

#: File formats the loader reads, by the name ``--format`` takes.
FORMATS = ("parquet", "csv", "fits")

#: File name endings and their format, tried in this order.
SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "csv",
    ".tsv.gz": "csv",
    ".fits": "fits",
    ".fit": "fits",
    ".fits.gz": "fits",
    ".fts": "fits",
}


@dataclass(frozen=True)
class Batch:
    """Consecutive rows of a catalog file.

    Attributes
    ----------
    start
        Row number (0-based, header excluded) of the first row in the file.
    columns
        Values by column name, one list per column, all of the same length.
    """

    start: int
    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), []))


class CatalogReader(Protocol):
    """What the loader needs from a catalog file."""

    path: Path
    columns: list[str]
    #: Number of data rows, or None when only a full read would tell.
    num_rows: int | None

    def batches(self, size: int, skip: int = 0) -> Iterator[Batch]:
        """Yield batches of up to ``size`` rows, starting after the first ``skip`` rows."""
        ...


def detect_format(path: Path) -> str:
    """Return the format of ``path`` from its name.

    Raises
    ------
    CatalogError
        If the name ends in none of the known suffixes.
    """
    name = path.name.lower()
    for suffix, fmt in SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    raise CatalogError(
        f"cannot tell the format of {path.name} from its name; "
        f"give it with --format ({'|'.join(FORMATS)})"
    )


def open_catalog(path: str | Path, fmt: str | None = None) -> CatalogReader:
    """Open a catalog file for reading in batches.

    Parameters
    ----------
    path
        The file.
    fmt
        ``"parquet"``, ``"csv"`` or ``"fits"``; detected from the file name if None.

    Raises
    ------
    CatalogError
        If the file is missing or unreadable, or the format is unknown.
    """
    path = Path(path)
    if path.is_dir():
        raise CatalogError(f"{path} is a folder: give one catalog file (Parquet, CSV or FITS)")
    if not path.is_file():
        raise CatalogError(f"catalog file not found: {path}")
    fmt = detect_format(path) if fmt is None else fmt.lower()
    if fmt not in FORMATS:
        raise CatalogError(f"unknown catalog format {fmt!r}; use one of {', '.join(FORMATS)}")
    openers: dict[str, Callable[[Path], CatalogReader]] = {
        "parquet": ParquetReader,
        "csv": CsvReader,
        "fits": FitsReader,
    }
    try:
        reader = openers[fmt](path)
    except CatalogError:
        raise
    except Exception as e:  # the readers' libraries raise many types for a bad file
        raise CatalogError(f"cannot read {path} as {fmt}: {e}") from None
    _check_distinct(reader)
    return reader


def _check_distinct(reader: CatalogReader) -> None:
    """Refuse a file whose header repeats a column name.

    Batches hold values by column name, so a repeated column would silently hide
    the one before it (and could move the position to another column).
    """
    counts = Counter(reader.columns)
    repeated = [name for name, n in counts.items() if n > 1]
    if repeated:
        raise CatalogError(
            f"{reader.path}: the header repeats column {', '.join(map(repr, repeated))}; "
            "give every column its own name"
        )


class ParquetReader:
    """Parquet files, read one record batch at a time with pyarrow."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq  # deferred: pyarrow is heavy and only loading needs it

        self.path = path
        self._file = pq.ParquetFile(path)
        self.columns = list(self._file.schema_arrow.names)
        self.num_rows: int | None = self._file.metadata.num_rows

    def batches(self, size: int, skip: int = 0) -> Iterator[Batch]:
        """Yield batches of up to ``size`` rows, starting after the first ``skip`` rows."""
        start = 0
        for record_batch in self._file.iter_batches(batch_size=size):
            end = start + record_batch.num_rows
            if end > skip:
                # Skipped rows are never converted to Python: resuming costs only the read.
                part = record_batch.slice(max(skip - start, 0))
                first = max(start, skip)
                yield Batch(first, {n: part.column(n).to_pylist() for n in self.columns})
            start = end


def _csv_cell(text: str) -> Any:
    """Return a CSV cell as int, float or stripped string (None when empty)."""
    text = text.strip()
    if not text:
        return None
    # Zero-padded values ("007", "0012") are identifiers, not numbers.
    if not (len(text) > 1 and text[0] == "0" and text[1].isdigit()):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
    return text


class CsvReader:
    """Comma- (or tab-, for .tsv) separated text with a header line.

    Spaces around fields and quotes are tolerated (``1 , "a b" , 2``); numbers
    become int or float, other cells stay strings.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._delimiter = "\t" if ".tsv" in path.name.lower() else ","
        with self._open() as f:
            rows = self._rows(f)
            header = next(rows, None)
            if header is None:
                raise CatalogError(f"{path} is empty: a CSV catalog needs a header line")
            self.columns = [name.strip() for name in header[1]]
            self.num_rows: int | None = sum(1 for _ in rows)

    def _open(self) -> io.TextIOBase:
        if self.path.name.lower().endswith(".gz"):
            return io.TextIOWrapper(gzip.open(self.path), encoding="utf-8-sig", newline="")
        return open(self.path, encoding="utf-8-sig", newline="")

    def _rows(self, f: io.TextIOBase) -> Iterator[tuple[int, list[str]]]:
        """Yield (line number, cells) for every non-blank line."""
        reader = csv.reader(f, delimiter=self._delimiter, skipinitialspace=True)
        for cells in reader:
            if any(c.strip() for c in cells):
                yield reader.line_num, cells

    def batches(self, size: int, skip: int = 0) -> Iterator[Batch]:
        """Yield batches of up to ``size`` rows, starting after the first ``skip`` rows."""
        width = len(self.columns)
        with self._open() as f:
            rows = self._rows(f)
            next(rows)  # header
            block: list[list[Any]] = []
            first = skip
            for i, (line, cells) in enumerate(rows):
                if i < skip:
                    continue
                if len(cells) != width:
                    raise CatalogError(
                        f"{self.path}: line {line} has {len(cells)} fields, the header {width}"
                    )
                block.append([_csv_cell(c) for c in cells])
                if len(block) == size:
                    yield self._batch(first, block)
                    first, block = first + size, []
            if block:
                yield self._batch(first, block)

    def _batch(self, start: int, block: list[list[Any]]) -> Batch:
        return Batch(start, {n: [row[j] for row in block] for j, n in enumerate(self.columns)})


class FitsReader:
    """The first table HDU of a FITS file, read through a memory map with astropy."""

    def __init__(self, path: Path) -> None:
        from astropy.io import fits  # deferred: astropy is heavy and only loading needs it

        self.path = path
        self._hdul = fits.open(path, memmap=True)
        tables = [h for h in self._hdul if isinstance(h, fits.BinTableHDU | fits.TableHDU)]
        if not tables:
            raise CatalogError(f"{path} has no table HDU")
        self._data = tables[0].data
        self.columns = list(tables[0].columns.names)
        self.num_rows: int | None = len(self._data)

    def batches(self, size: int, skip: int = 0) -> Iterator[Batch]:
        """Yield batches of up to ``size`` rows, starting after the first ``skip`` rows."""
        total = len(self._data)
        for start in range(skip, total, size):
            rows = self._data[start : start + size]
            # tolist() turns numpy scalars into Python ones; FITS strings may come as bytes.
            yield Batch(start, {n: _decoded(rows.field(n).tolist()) for n in self.columns})


def _decoded(values: list[Any]) -> list[Any]:
    return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in values]
