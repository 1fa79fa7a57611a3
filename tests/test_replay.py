"""Replaying a night: reading its archive, producing it to Kafka, downloading it.

Reading and downloading are tested on real packets without any server; the
producer is tested against the real local Kafka (``services`` fixture), each
test on a topic of its own.
"""

from __future__ import annotations

import dataclasses
import io
import tarfile
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError

from boom_tasks.errors import ServiceUnavailable
from boom_tasks.replay import cli
from boom_tasks.replay.archive import ArchiveError, count_packets, iter_packets
from boom_tasks.replay.producer import produce_night, produce_packets
from boom_tasks.services.kafka import consumer_config
from boom_tasks.settings import Settings
from boom_tasks.surveys import SURVEYS
from boom_tasks.surveys.ztf import ZTF
from boom_tasks.surveys.ztf.replay import fetch_night, night_filename
from tests.conftest import ZTF_DATA

KOWALSKI = ZTF_DATA / "kowalski"  # real packets of two nights, several per object


def real_packets(folder: Path = KOWALSKI) -> list[Path]:
    return sorted(folder.rglob("*.avro"))


def make_tarball(path: Path, packets: list[Path], extra: dict[str, bytes] | None = None) -> Path:
    """Write a public-archive-like .tar.gz: packets under a folder, plus ``extra`` members."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(packets[0].parent, arcname="night", recursive=False)  # a directory member
        for p in packets:
            tar.add(p, arcname=f"night/{p.name}")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def consume_all(settings: Settings, topic: str, expected: int) -> list[tuple[str | None, bytes]]:
    """Read ``topic`` from the start until ``expected`` messages or 60 s have passed."""
    consumer = Consumer(consumer_config(settings.kafka, f"{topic}-reader"))
    consumer.subscribe([topic])
    got: list[tuple[str | None, bytes]] = []
    deadline = time.monotonic() + 60
    try:
        while len(got) < expected and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or (msg.error() and msg.error().code() == KafkaError._PARTITION_EOF):
                continue
            assert msg.error() is None, msg.error()
            key = msg.key()
            got.append((key.decode() if key is not None else None, msg.value()))
    finally:
        consumer.close()
    return got


# --- archive -------------------------------------------------------------------------


def test_a_folder_yields_every_packet_recursively_in_sorted_order():
    # Given the shared data: real packets spread over one sub-folder per source
    paths = real_packets(ZTF_DATA)
    assert len({p.parent for p in paths}) > 5

    # When the top folder is read as a night
    packets = list(iter_packets(ZTF_DATA))

    # Then every packet comes out unmodified, in sorted path order, named by its file
    assert [name for name, _ in packets] == [p.name for p in paths]
    assert all(data == p.read_bytes() for (_, data), p in zip(packets, paths, strict=True))
    assert count_packets(ZTF_DATA) == len(paths)


def test_a_tarball_is_streamed_and_only_its_avro_members_are_yielded(tmp_path):
    # Given a .tar.gz of real packets with a folder entry and a non-Avro member
    paths = real_packets()[:7]
    tarball = make_tarball(tmp_path / "night.tar.gz", paths, {"night/README.txt": b"notes"})

    # When it is read as a night
    packets = list(iter_packets(tarball))

    # Then exactly the packets come out, in archive order, named without folders
    assert packets == [(p.name, p.read_bytes()) for p in paths]
    assert count_packets(tarball) is None  # counting would mean reading it twice
    assert list(tmp_path.iterdir()) == [tarball]  # nothing was extracted


def test_a_truncated_tarball_fails_with_a_clear_error(tmp_path):
    # Given a tarball cut short, as an interrupted download leaves it
    whole = make_tarball(tmp_path / "whole.tar.gz", real_packets()[:10]).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])

    # When it is read to the end
    # Then the error names the file and the likely cause, not a gzip internal
    with pytest.raises(ArchiveError, match=r"cut\.tar\.gz \(corrupt or truncated\?\)"):
        list(iter_packets(cut))


@pytest.mark.parametrize("name", ["missing", "notes.txt"])
def test_a_source_that_is_neither_folder_nor_tarball_is_refused_at_once(tmp_path, name):
    # Given a path that does not exist, or a file that is not a tarball
    (tmp_path / "notes.txt").write_text("not alerts")

    # When it is given as a night's source
    # Then the call itself fails (not the first iteration) and suggests what to give
    with pytest.raises(ArchiveError, match=r"give a folder of \.avro packets or a night's"):
        iter_packets(tmp_path / name)


# --- download ------------------------------------------------------------------------


def test_a_night_is_downloaded_once_then_served_from_the_cache(tmp_path):
    # Given an archive server (a file:// folder) publishing one night's tarball
    server = tmp_path / "server"
    server.mkdir()
    published = make_tarball(server / night_filename("20240617"), real_packets()[:5])
    cache = tmp_path / "cache"

    # When the night is fetched
    first = fetch_night("20240617", cache, base_url=server.as_uri(), progress=False)

    # Then the cache holds a complete copy under the archive's name, and no .part file
    assert first == cache / "ztf_public_20240617.tar.gz"
    assert first.read_bytes() == published.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == [first.name]

    # When it is fetched again after the server lost it
    published.unlink()
    second = fetch_night("20240617", cache, base_url=server.as_uri(), progress=False)

    # Then the cached copy is returned without downloading
    assert second == first
    assert [name for name, _ in iter_packets(second)] == [p.name for p in real_packets()[:5]]


def test_a_failed_download_leaves_nothing_that_looks_complete(tmp_path):
    # Given a stale .part left by an interrupted run, and a night the server lacks
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ztf_public_20240618.tar.gz.part").write_bytes(b"half a night")

    # When that night is fetched
    with pytest.raises(ArchiveError, match=r"cannot download .*ztf_public_20240618\.tar\.gz"):
        fetch_night("20240618", cache, base_url=(tmp_path / "empty").as_uri(), progress=False)

    # Then neither a complete-looking tarball nor the partial file is left behind
    assert list(cache.iterdir()) == []


def test_a_malformed_date_is_refused_before_any_download(tmp_path):
    # Given a date that is not YYYYMMDD
    # When it is fetched
    # Then it is refused before the cache folder is even created
    with pytest.raises(ValueError):
        fetch_night("2024-06-17", tmp_path / "cache", base_url=tmp_path.as_uri())
    assert not (tmp_path / "cache").exists()


# --- producer (real Kafka) -----------------------------------------------------------


@pytest.mark.services
def test_a_night_is_produced_unmodified_to_its_topic(services, unique, tmp_path):
    # Given a night's tarball of real packets and a survey whose topic is ours alone
    paths = real_packets()
    tarball = make_tarball(tmp_path / "night.tar.gz", paths)
    survey = dataclasses.replace(ZTF, topic_template=f"test-replay-{unique}-{{date}}")

    # When the night is produced
    produced = produce_night(services, survey, "20231012", tarball, progress=False)

    # Then every packet is in the night's topic, byte for byte, keyed by its file name
    assert produced == len(paths)
    got = consume_all(services, f"test-replay-{unique}-20231012", len(paths))
    assert got == [(p.name, p.read_bytes()) for p in paths]


@pytest.mark.services
def test_bursts_are_paced_by_their_interval(services, unique):
    # Given 13 packets sent in bursts of 4, one burst every 0.5 s
    packets = [p.read_bytes() for p in real_packets()[:13]]

    # When they are produced
    started = time.monotonic()
    produced = produce_packets(
        services,
        f"test-pacing-{unique}",
        packets,
        burst_size=4,
        burst_interval_s=0.5,
        progress=False,
    )
    elapsed = time.monotonic() - started

    # Then 4 bursts went out, the last three each waiting for its slot (>= 1.5 s)
    assert produced == 13
    assert elapsed >= 1.5 * 0.95
    assert [v for _, v in consume_all(services, f"test-pacing-{unique}", 13)] == packets


@pytest.mark.services
def test_a_full_local_queue_delays_packets_but_loses_none(services, unique):
    # Given a producer whose local queue holds only 2 packets
    packets = [p.read_bytes() for p in real_packets()]

    # When more packets than that are produced in one go
    produced = produce_packets(
        services,
        f"test-full-queue-{unique}",
        iter(packets),
        progress=False,
        overrides={"queue.buffering.max.messages": 2},
    )

    # Then every packet still reaches the topic, in order
    assert produced == len(packets)
    got = consume_all(services, f"test-full-queue-{unique}", len(packets))
    assert [v for _, v in got] == packets


def test_undelivered_packets_raise_service_unavailable(settings):
    # Given a Kafka address where nothing listens, and a short delivery timeout
    dead = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:1"})}
    )

    # When packets are produced there
    # Then the failed deliveries are reported, not silently dropped
    with pytest.raises(ServiceUnavailable, match="2 of 2 packets for nowhere failed delivery"):
        produce_packets(
            dead,
            "nowhere",
            [b"a", b"b"],
            progress=False,
            create_topic=False,
            overrides={"message.timeout.ms": 500},
        )


# --- command line --------------------------------------------------------------------


@pytest.mark.services
def test_boom_produce_replays_a_folder_and_says_where(services, unique, monkeypatch, capsys):
    # Given the ZTF survey pointed at a topic of our own
    monkeypatch.setitem(
        SURVEYS, "ZTF", dataclasses.replace(ZTF, topic_template=f"cli-{unique}-{{date}}")
    )

    # When boom-produce replays a folder of real packets
    with pytest.raises(SystemExit) as exit_:
        cli.main(["ztf", "--date", "20200202", "--from", str(KOWALSKI), "--no-progress"])

    # Then it succeeds, says how many alerts went to which topic, and they are there
    n = len(real_packets())
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"produced {n} alerts to topic cli-{unique}-20200202"
    assert len(consume_all(services, f"cli-{unique}-20200202", n)) == n


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ZTF", "--date", "20240617", "--from", "/no/such/night"], "/no/such/night does not"),
        (["HST", "--date", "20240617", "--from", "/tmp"], "unknown survey 'HST'"),
        (["ZTF", "--date", "20241317"], "expected a night as YYYYMMDD, got '20241317'"),
    ],
)
def test_boom_produce_explains_bad_input_in_one_line(args, message, capsys):
    # Given a missing source, an unknown survey or an impossible date
    # When boom-produce is run with it
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)

    # Then it exits with status 2 and a one-line explanation, no traceback
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]  # argparse prints its usage above
    assert last.startswith("boom-produce: error: ")
    assert message in last
