"""``boom-print TOPIC [--stamps DIR] [--max N] [--from-beginning] [--group G]``.

Print each alert published on an output topic, as the alert_stream demo's
``printStream`` does for survey topics (lsst-dm/alert_stream, ZTF's fork):
one summary per alert instead of the whole record. With ``--stamps`` each
alert's picture is written as ``<candid>.png`` (the three stamps and the light
curve, :mod:`boom_tasks.pictures`), and each cutout as FITS (gunzipped),
``<candid>_<science|template|difference>.fits``. Early alerts whose cutouts are
JPEG get ``.jpg`` instead; a cutout that cannot be read gets
``.unreadable.txt`` saying why, and its panel of the picture says it too.

Without ``--group`` every run has its own consumer group and commits nothing,
so two terminals both see every alert. With ``--group`` offsets are committed
and a later run continues where this one stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import os
import socket
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from boom_tasks.entry import EXIT_OK, exit_with, kafka_topic, whole_number
from boom_tasks.errors import ServiceUnavailable
from boom_tasks.output.schema import OutputMessageError, decode

#: Seconds each poll waits; short, so Ctrl-C and ``--max`` are answered promptly.
POLL_TIMEOUT_S = 1.0
#: Julian date of the Unix epoch (1970-01-01T00:00:00 UTC).
JD_UNIX_EPOCH = 2440587.5
#: Band of each filter id (``fid``), for messages whose candidate names no ``band``
#: (ZTF's results schema carries ZTF's candidate record, which has only ``fid``).
BANDS = {1: "g", 2: "r", 3: "i"}
#: ``isdiffpos`` of a positive subtraction, in every survey's spelling (or unknown).
POSITIVE = (None, True, "t", "1")
#: File-name part of each cutout field.
STAMP_KINDS = {
    "cutoutScience": "science",
    "cutoutTemplate": "template",
    "cutoutDifference": "difference",
}
#: First bytes of a gzip stream, a FITS file and a JPEG image.
GZIP_MAGIC, FITS_MAGIC, JPEG_MAGIC = b"\x1f\x8b", b"SIMPLE", b"\xff\xd8"


# -- one alert as text -----------------------------------------------------------------


def jd_to_utc(jd: float) -> dt.datetime:
    """Return the UTC datetime of a Julian date (to the millisecond)."""
    return dt.datetime.fromtimestamp(round((jd - JD_UNIX_EPOCH) * 86400.0, 3), dt.UTC)


def format_alert(message: dict[str, Any]) -> str:
    """Return a few lines describing one published alert (no cutouts)."""
    cand = message.get("candidate") or {}
    when = jd_to_utc(message["jd"]).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        f"{message['objectId']}  candid {message['candid']}  jd {message['jd']:.5f} ({when})",
        f"  ra {message['ra']:.6f}  dec {message['dec']:+.6f}  {_photometry(cand)}",
    ]
    for i, f in enumerate(message.get("filters") or []):
        label = "  filters: " if i == 0 else "           "
        version = f", {f['version']}" if f.get("version") else ""
        passed = dt.datetime.fromtimestamp(f["passed_at"], dt.UTC).strftime("%H:%M:%S")
        lines.append(
            f"{label}{f['name']} ({f['filter_id']}{version}) at {passed}  {f['annotations']}"
        )
    scores = message.get("classifications") or {}
    if scores:
        lines.append(
            "  classifications: " + "  ".join(f"{k}={v:.3f}" for k, v in sorted(scores.items()))
        )
    lines.append("  " + _history_line(message))
    return "\n".join(lines)


def _photometry(cand: dict[str, Any]) -> str:
    if cand.get("magpsf") is None:
        return "no magnitude"
    band = cand.get("band") or BANDS.get(cand.get("fid") or 0, f"fid{cand.get('fid')}")
    err = f" ± {cand['sigmapsf']:.2f}" if cand.get("sigmapsf") is not None else ""
    sign = "" if cand.get("isdiffpos") in POSITIVE else " (negative subtraction)"
    drb = f"  drb {cand['drb']:.2f}" if cand.get("drb") is not None else ""
    return f"{band} {cand['magpsf']:.2f}{err}{sign}{drb}"


def _history_line(message: dict[str, Any]) -> str:
    counts = (
        f"{len(message.get('prv_candidates') or [])} detections, "
        f"{len(message.get('prv_nondetections') or [])} upper limits, "
        f"{len(message.get('fp_hists') or [])} forced"
    )
    times = message.get("times") or {}
    if times.get("received") is not None and times.get("published") is not None:
        counts += f"; latency {times['published'] - times['received']:.2f} s"
    return counts


# -- cutouts as files -------------------------------------------------------------------


def stamp_files(message: dict[str, Any]) -> dict[str, bytes]:
    """Return the cutout files of one alert, by file name.

    FITS cutouts (gzipped or not) give ``.fits`` (the alert's picture,
    :mod:`boom_tasks.pictures`, shows them); JPEG cutouts (some 2017-2018
    alerts) give ``.jpg``; a missing or unrecognised cutout gives nothing. A
    cutout that cannot be read (real ZTF packets carry gzip streams that fail
    their CRC) gives ``.unreadable.txt`` saying why, and the other cutouts are written as usual.
    """
    files: dict[str, bytes] = {}
    for field, kind in STAMP_KINDS.items():
        data = message.get(field)
        if not data:
            continue
        stem = f"{message['candid']}_{kind}"
        try:
            files.update(_stamp(stem, data))
        except StampUnreadable as e:
            files[f"{stem}.unreadable.txt"] = (
                f"{field} of candid {message['candid']}: {e}\n".encode()
            )
    return files


class StampUnreadable(ValueError):
    """A cutout's bytes are not a readable image (corrupt gzip, broken FITS)."""


def _stamp(stem: str, data: bytes) -> dict[str, bytes]:
    """Return one cutout's files, or raise :class:`StampUnreadable` with the reason."""
    try:
        raw = gzip.decompress(data) if data.startswith(GZIP_MAGIC) else data
        if raw.startswith(FITS_MAGIC):
            fits_image(raw)  # a FITS file astropy cannot read is unreadable, not written
            return {f"{stem}.fits": raw}
    except (OSError, EOFError, ValueError, TypeError) as e:  # gzip, astropy: all unreadable
        raise StampUnreadable(f"{type(e).__name__}: {e}") from None
    return {f"{stem}.jpg": raw} if raw.startswith(JPEG_MAGIC) else {}


def fits_image(data: bytes) -> np.ndarray:
    """Return the image of the first FITS HDU that has one, as float64."""
    from astropy.io import fits

    with warnings.catch_warnings():
        # ZTF cutout headers have a non-standard SIMPLE card; the data read correctly.
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        with fits.open(io.BytesIO(data)) as hdus:
            for hdu in hdus:
                if hdu.data is not None:
                    return np.asarray(hdu.data, dtype=np.float64)
    raise ValueError("FITS file holds no image")


def write_stamps(message: dict[str, Any], folder: Path) -> list[Path]:
    """Write :func:`stamp_files` of one alert into ``folder`` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in stamp_files(message).items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def write_picture(message: dict[str, Any], folder: Path) -> Path:
    """Write the alert's picture, ``<candid>.png``, into ``folder`` (created if needed)."""
    from boom_tasks.pictures import from_message, render_png

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{message['candid']}.png"
    path.write_bytes(render_png(from_message(message)))
    return path


def write_files(message: dict[str, Any], folder: Path) -> None:
    """Write the alert's picture and FITS cutouts; report on stderr what could not be written.

    Never raises for the alert's content: a stamp that cannot be read is drawn as
    its reason, and should drawing fail on data nobody foresaw, the picture is
    reported missing and the next alert is printed (the FITS files are kept).
    """
    for path in write_stamps(message, folder):
        if path.name.endswith(".unreadable.txt"):
            print(f"% stamp not written: {path.read_text().strip()}", file=sys.stderr)
    try:
        write_picture(message, folder)
    except OSError:
        raise  # the folder itself (full disk, permissions): the user must know at once
    except Exception as e:  # one alert's odd data must not stop the stream
        print(f"% picture of {message['candid']} not written: {e!r}", file=sys.stderr)


# -- Kafka ---------------------------------------------------------------------------------


def open_consumer(topic: str, group: str | None, program: str, from_beginning: bool) -> Consumer:
    """Subscribe to ``topic`` with the project's Kafka settings.

    Without ``group`` a group of this process alone is used, which starts at
    the end of the topic unless ``from_beginning``.

    Raises
    ------
    ServiceUnavailable
        If no Kafka broker answers: a consumer would wait in silence for ever.
    """
    from boom_tasks.services.kafka import check_reachable, consumer_config
    from boom_tasks.settings import get_settings

    kafka = get_settings().kafka
    check_reachable(kafka)
    group_id = group or f"{program}-{socket.gethostname()}-{os.getpid()}"
    reset = "earliest" if from_beginning else "latest"
    consumer = Consumer(consumer_config(kafka, group_id, **{"auto.offset.reset": reset}))

    def on_assign(c: Consumer, partitions: list[TopicPartition]) -> None:
        if from_beginning:
            for p in partitions:
                p.offset = OFFSET_BEGINNING
        c.assign(partitions)

    consumer.subscribe([topic], on_assign=on_assign)
    return consumer


def consume(
    consumer: Consumer,
    handle: Callable[[Message], None],
    limit: int | None = None,
    tick: Callable[[], None] | None = None,
) -> int:
    """Poll ``consumer`` and pass each message to ``handle``; return how many were handled.

    Stops after ``limit`` messages (never when None). ``tick`` runs after every
    poll, messages or not, for periodic work. End-of-partition events are
    reported on stderr; a fatal Kafka error raises :class:`ServiceUnavailable`.
    """
    handled = 0
    while limit is None or handled < limit:
        msg = consumer.poll(POLL_TIMEOUT_S)
        if tick is not None:
            tick()
        if msg is None:
            continue
        err = msg.error()
        if err is None:
            handle(msg)
            handled += 1
        elif err.code() == KafkaError._PARTITION_EOF:
            print(
                f"% end of {msg.topic()} [{msg.partition()}] at offset {msg.offset()}",
                file=sys.stderr,
            )
        elif err.fatal():
            raise ServiceUnavailable(f"Kafka consumer failed: {err.str()}")
        else:
            print(f"% Kafka: {err.str()}", file=sys.stderr)
    return handled


#: Fields every published results message has (``format_alert`` reads them).
MESSAGE_FIELDS = ("objectId", "candid", "jd", "ra", "dec")


def decode_or_report(msg: Message) -> dict[str, Any] | None:
    """Decode one Kafka message, or report on stderr why it cannot be and return None.

    A raw survey packet (a survey's intake topic given by mistake) is Avro too, but
    not a results message: it is reported, not printed.
    """
    where = f"% {msg.topic()} [{msg.partition()}] offset {msg.offset()}"
    try:
        message = decode(msg.value() or b"")
    except OutputMessageError as e:
        print(f"{where}: {e}", file=sys.stderr)
        return None
    missing = [k for k in MESSAGE_FIELDS if k not in message]
    if missing:
        print(
            f"{where}: not a published results message (no {', '.join(missing)}); "
            "read an output topic such as ZTF_alerts_results",
            file=sys.stderr,
        )
        return None
    return message


# -- command line ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="boom-print", description="Print alerts published on a topic.")
    p.add_argument("topic", type=kafka_topic, help="output topic, e.g. ZTF_alerts_results")
    p.add_argument(
        "--stamps",
        type=Path,
        metavar="DIR",
        help="write pictures (PNG) and cutouts (FITS) here",
    )
    p.add_argument("--max", type=whole_number(1), metavar="N", help="stop after N messages")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest message")
    p.add_argument("--group", help="consumer group: share the topic and remember the position")
    return p


def run(argv: list[str] | None = None) -> int:
    """Run ``boom-print``; return the exit code."""
    args = _parser().parse_args(argv)
    consumer = open_consumer(args.topic, args.group, "boom-print", args.from_beginning)

    def handle(msg: Message) -> None:
        message = decode_or_report(msg)
        if message is not None:
            print(format_alert(message), flush=True)
            if args.stamps is not None:
                write_files(message, args.stamps)
        if args.group:
            consumer.commit(message=msg, asynchronous=True)

    try:
        consume(consumer, handle, limit=args.max)
    except KeyboardInterrupt:
        print("% aborted by user", file=sys.stderr)
    finally:
        consumer.close()
    return EXIT_OK


def main() -> None:
    """Entry point of ``boom-print``."""
    exit_with("boom-print", run)
