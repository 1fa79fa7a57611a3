"""``boom-print --stamps DIR`` on a real Kafka topic: a picture per alert, FITS beside it.

Published messages of real alerts (a 4.01 alert with forced photometry, the three
alerts whose difference stamp fails its CRC, a Rubin alert) are encoded with the
results schemas and produced to a topic of this test; ``boom-print`` runs as a
user runs it and must write every picture and end with status 0.
"""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from PIL import Image

from boom_tasks.output.schema import encode
from boom_tasks.pictures.figure import DPI, SIZE_IN
from boom_tasks.services.kafka import producer_config
from tests.alerts import ZTF_DATA, read_packet
from tests.conftest import DATA, ROOT
from tests.test_pictures import CORRUPT_STAMPS, _message

pytestmark = pytest.mark.services

BIN = Path(sys.executable).parent


def test_boom_print_writes_a_picture_per_alert_and_never_crashes(services, tmp_path):
    # Given a results topic holding real alerts of both surveys, three with a corrupt stamp
    ztf = [ZTF_DATA / "kowalski" / "20231012_2475433850015010009.avro"]
    ztf += [ZTF_DATA / "ampel-ztf" / f"{c}.avro" for c in CORRUPT_STAMPS]
    messages = [_message("ZTF", read_packet(p)) for p in ztf]
    lsst = sorted((DATA / "lsst" / "boom").glob("*.avro"))[0]
    messages.append(_message("LSST", lsst.read_bytes()))
    topic = f"pictures-{uuid.uuid4().hex[:10]}"
    producer = Producer(producer_config(services.kafka))
    for m in messages:
        producer.produce(topic, encode(m), key=str(m["candid"]).encode())
    assert producer.flush(30) == 0
    # When boom-print reads it with --stamps
    out = tmp_path / "stamps"
    command = [str(BIN / "boom-print"), topic, "--from-beginning", "--stamps", str(out)]
    printed = subprocess.run(
        [*command, "--max", str(len(messages))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    # Then it ends normally, having printed every alert
    assert printed.returncode == 0, printed.stderr
    assert "Traceback" not in printed.stderr
    assert all(f"candid {m['candid']}" in printed.stdout for m in messages)
    # And every alert has its picture, at full size
    for m in messages:
        with Image.open(io.BytesIO((out / f"{m['candid']}.png").read_bytes())) as img:
            assert img.size == (round(SIZE_IN[0] * DPI), round(SIZE_IN[1] * DPI))
    # And the FITS cutouts are written as before, the corrupt ones reported on stderr
    for c in CORRUPT_STAMPS:
        assert (out / f"{c}_science.fits").exists()
        assert not (out / f"{c}_difference.fits").exists()
        assert f"cutoutDifference of candid {c}" in printed.stderr
    assert not list(out.glob("*_science.png")), "one picture per alert, not one per stamp"
