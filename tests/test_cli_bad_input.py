"""Command-line tools given bad input end in one clear line and a non-zero code, never a traceback.

Each case below ended in a Python traceback, a hang or a silent acceptance when the
tools were run on bad input (December 2026); each tool runs as a real process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from boom_tasks.entry import EXIT_BAD_CONFIG, EXIT_ERROR
from boom_tasks.replay.producer import produce_packets
from tests.alerts import packet_paths, read_packet
from tests.conftest import TEST_CONFIG

BIN = Path(sys.executable).parent
ENV = {**os.environ, "BOOM_CONFIG": str(TEST_CONFIG)}


def _run(*argv: str, env: dict[str, str] | None = None, stdin: str = "") -> tuple[int, str]:
    """Run a console script; return its exit code and standard error."""
    done = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        env=env or ENV,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stderr


def _refused(code: int, err: str, words: str) -> None:
    assert code == EXIT_ERROR, err
    assert words in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["boom", "catalogs", "--log-level", "BOGUS", "list"], "'BOGUS' is not one of DEBUG"),
        (["boom-bridge", "ZTF", "--log-level", "loud"], "'loud' is not one of DEBUG"),
        (["boom-api", "--port", "70000"], "whole number in [1, 65535], got '70000'"),
        (["boom-dashboard", "--port", "-1"], "whole number in [1, 65535], got '-1'"),
        (["boom", "replays", "list", "--limit", "9" * 20], "whole number in [1, 2147483647]"),
        (["boom", "replays", "backfill", "x", "--nights", "100000000"], "in [1, 36500]"),
        (["boom", "crossmatch", "reprocess", "ZTF", "--batch-size", "-1"], "got '-1'"),
        (["boom", "filters", "test", "x", "--candids", "9" * 25], "whole number in [1, 922"),
        (["boom", "night", "--workers", "0"], "whole number in [1, 64], got '0'"),
        (["boom", "catalogs", "load", "x", "y", "--order", "99"], "whole number in [0, 29]"),
        (["boom-workers", "-p", "0"], "whole number in [1, 64], got '0'"),
        (["boom-produce", "ZTF", "--burst-interval", "inf"], "seconds >= 0, got 'inf'"),
        (["boom-print", ""], "a topic name is needed"),
        (["boom-monitor", " "], "a topic name is needed"),
        (["boom-produce", "ZTF", "--topic", ""], "a topic name is needed"),
        (["boom", "filters", "add", "n", "[]", "--programids", "-1"], "programids such as 1,2"),
        (["boom", "filters", "test", "[]", "--programids", ""], "programids such as 1,2"),
        (["boom-bridge", "ZTF", "--topic", ""], "a topic name is needed"),
    ],
)
def test_bad_options_are_usage_errors(argv: list[str], words: str) -> None:
    _refused(*_run(*argv), words)


def test_a_configuration_that_is_not_utf8_or_out_of_range_is_named(tmp_path: Path) -> None:
    # Given a configuration file that is not UTF-8 text
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"valkey:\n  host: caf\xe9\n")
    code, err = _run("boom", "catalogs", "list", env={**ENV, "BOOM_CONFIG": str(bad)})
    _refused(code, err, f"cannot read configuration {bad}")
    # And values no server or driver can take
    for key, value, words in [
        ("BOOM_VALKEY__PORT", "99999", "valkey.port"),
        ("BOOM_MONGO__SERVER_SELECTION_TIMEOUT_MS", "-5", "server_selection_timeout_ms"),
        ("BOOM_KAFKA__PARTITIONS", "-3", "kafka.partitions"),
    ]:
        _refused(*_run("boom", "catalogs", "list", env={**ENV, key: value}), words)


def test_filters_that_json_allows_but_bson_cannot_hold_are_refused(tmp_path: Path) -> None:
    # Given a pipeline nested deeper than Python's parser goes, and one with a huge integer
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    huge = tmp_path / "huge.json"
    stages = [
        {"$match": {"candidate.magpsf": 10**30}},
        {"$project": {"objectId": 1, "annotations": 1}},
    ]
    huge.write_text(json.dumps(stages))
    # When they are validated, Then each is refused with its reason
    _refused(*_run("boom", "filters", "validate", f"@{deep}"), "nested too deeply")
    code, err = _run("boom", "filters", "validate", f"@{huge}")
    _refused(code, err, f"{10**30} does not fit a 64-bit integer")


def test_a_science_actor_name_that_is_no_module_and_a_password_without_terminal() -> None:
    code, err = _run("boom", "science", "run", "../x", "--night", "20240715")
    _refused(code, err, "'../x': not a module name")
    # (stdin is a pipe with nothing in it: getpass would have read it and hit its end)
    code, err = _run("boom", "users", "add", "zed")
    _refused(code, err, "no terminal to ask the password on: give it with --password")


@pytest.mark.services
def test_boom_print_on_an_intake_topic_reports_each_packet(services, unique) -> None:
    # Given raw survey packets on a topic (an intake topic, not a results topic)
    topic = f"raw-{unique}"
    packets = [read_packet(p) for p in packet_paths("fink-20181129")[:2]]
    produce_packets(services, topic, packets, progress=False)
    # When boom-print reads it
    code, err = _run("boom-print", topic, "--from-beginning", "--max", "2")
    # Then each packet is reported as not a results message, and the tool ends cleanly
    assert code == 0 and "Traceback" not in err, err
    assert err.count("not a published results message (no jd, ra, dec)") == 2, err


@pytest.mark.services
def test_boom_workers_stops_at_once_when_a_worker_cannot_import_its_module(services) -> None:
    # Given two worker slots told to import a module that does not exist
    code, err = _run("boom-workers", "-p", "2", "--module", "no.such.module")
    # Then the supervisor does not restart them for ever: it stops with the config code
    assert code == EXIT_BAD_CONFIG, err
    assert "a module failed to import" in err and "not restarting" in err
    assert "No module named 'no'" in err and "restarting in" not in err


@pytest.mark.services
def test_a_filter_name_that_is_empty_or_too_long_is_refused(services) -> None:
    pipeline = json.dumps(
        [{"$match": {"candidate.magpsf": {"$lt": 15}}}, {"$project": {"objectId": 1}}]
    )
    for name, length in [("   ", 3), ("n" * 101, 101)]:
        code, err = _run("boom", "filters", "add", name, pipeline, "--survey", "ZTF")
        _refused(code, err, f"a filter name has 1 to 100 characters, not {length}")


@pytest.mark.parametrize("tool", ["boom-print", "boom-monitor"])
def test_readers_of_a_topic_say_when_kafka_is_unreachable(tool: str) -> None:
    # Given no Kafka where the configuration points (they used to wait in silence)
    env = {**ENV, "BOOM_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    # Then the tool ends with one line naming the server
    _refused(*_run(tool, "ZTF_alerts_results", env=env), "Kafka at 127.0.0.1:1 is unreachable")


def test_unknown_queues_surveys_and_unreadable_pipeline_files_are_named(tmp_path: Path) -> None:
    code, err = _run("boom-workers", "-Q", "ztf_replay", "nosuchqueue")
    _refused(code, err, "no stage reads queue(s) ['nosuchqueue']")
    assert "'ztf_replay'" in err.split("the queues are")[1]  # a real queue is listed
    _refused(*_run("boom", "science", "enable", "x", "--survey", "FOO"), "unknown survey 'FOO'")
    binary = tmp_path / "pipeline.json"
    binary.write_bytes(b"\xff\xfe[]")
    _refused(*_run("boom", "filters", "validate", f"@{binary}"), "not UTF-8 text")


@pytest.mark.services
def test_a_scheduled_job_that_cannot_take_its_kwargs_is_refused_when_added(services) -> None:
    argv = ["boom", "schedule", "add", "bad-kwargs", "--cron", "0 12 * * *"]
    argv += ["--job", "boom_tasks.conductor.jobs:close_nights"]
    argv += ["--kwargs", '{"no_such_argument": 1}']
    code, err = _run(*argv)
    _refused(code, err, "cannot be called with kwargs {'no_such_argument': 1}")
