"""The command line and the API are two faces of one command layer: same failure, same words.

A real ``boom-api`` and real ``boom`` processes, on this module's own database;
and ``boom`` piped into a reader that closes early ends quietly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pymongo
import pytest

from boom_tasks.entry import EXIT_BROKEN_PIPE, EXIT_ERROR
from tests.apiserver import boom, running_api
from tests.conftest import TEST_CONFIG

#: This module's database, created and dropped here.
FACES_DB = "boom_test_command_faces"
#: In the range of the test configuration's ports (its API serves on 31000).
PORT = 31040
#: A Valkey database no other module uses (only incremented by filter changes).
VALKEY_DB = 10
BIN = Path(sys.executable).parent
PASSWORD = f"root {uuid.uuid4().hex}"
ENV = {
    **os.environ,
    "BOOM_CONFIG": str(TEST_CONFIG),
    "BOOM_MONGO__DATABASE": FACES_DB,
    "BOOM_VALKEY__DB": str(VALKEY_DB),
    "BOOM_API__SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
}
BAD = [{"$match": {"candidate.magpsf": {"$ltx": 15}}}, {"$out": "elsewhere"}]
GOOD = [{"$match": {"candidate.magpsf": {"$lt": 15}}}, {"$project": {"objectId": 1}}]


@pytest.fixture(scope="module")
def faces_db(services) -> Iterator[pymongo.database.Database]:  # type: ignore[no-untyped-def]
    client = pymongo.MongoClient(services.mongo.uri, serverSelectionTimeoutMS=5000)
    client.drop_database(FACES_DB)
    yield client[FACES_DB]
    client.drop_database(FACES_DB)
    client.close()


@pytest.fixture(scope="module")
def root(faces_db, tmp_path_factory) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    # Given an administrator account, made with the command line, and a running API
    made = boom(ENV, "users", "add", "root", "--password", PASSWORD, "--admin")
    assert made.returncode == 0, made.stderr
    log = tmp_path_factory.mktemp("faces") / "boom-api.log"
    with running_api(ENV, PORT, log) as url:
        answer = httpx.post(url + "/auth", data={"username": "root", "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            yield client


def _cli_error(*args: str) -> str:
    """Run ``boom ARGS``, check it failed cleanly; return its error message."""
    done = boom(ENV, *args)
    assert done.returncode == EXIT_ERROR, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    prefix = "boom: error: "
    assert done.stderr.startswith(prefix), done.stderr
    return done.stderr[len(prefix) :].strip()


def _api_error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"message"}
    return str(answer.json()["message"])


@pytest.mark.parametrize(
    ("cli", "request_", "status", "words"),
    [
        (
            ["filters", "activate", "no-such-filter"],
            ("POST", "/filters/no-such-filter/activate", None),
            404,
            "filter with id no-such-filter does not exist",
        ),
        (
            ["filters", "show", "no-such-filter"],
            ("GET", "/filters/no-such-filter", None),
            404,
            "filter with id no-such-filter does not exist",
        ),
        (
            ["filters", "validate", json.dumps(BAD)],
            ("POST", "/filters/validate", {"pipeline": BAD}),
            400,
            "invalid filter pipeline: ",
        ),
        (
            ["filters", "add", "bad", json.dumps(BAD)],
            ("POST", "/filters", {"name": "bad", "pipeline": BAD, "permissions": {"ZTF": [1]}}),
            400,
            "invalid filter pipeline: ",
        ),
        (
            ["filters", "validate", json.dumps(GOOD), "--survey", "NOPE"],
            ("POST", "/filters/validate", {"pipeline": GOOD, "survey": "NOPE"}),
            400,
            "NOPE",
        ),
    ],
)
def test_the_same_failure_reads_the_same_on_both_faces(
    root, faces_db, cli, request_, status, words
):
    # When the same mistake is made with `boom filters` and over HTTP
    from_cli = _cli_error(*cli)
    method, path, body = request_
    from_api = _api_error(root.request(method, path, json=body), status)
    # Then both say the same, word for word, and nothing was stored
    assert from_cli == from_api
    assert words in from_cli
    assert faces_db["filters"].count_documents({}) == 0


def test_both_faces_store_the_same_filter(root, faces_db):
    # When a filter is added on each face
    added = boom(ENV, "filters", "add", "by-cli", json.dumps(GOOD))
    assert added.returncode == 0, added.stderr
    body = {"name": "by-api", "pipeline": GOOD, "permissions": {"ZTF": [1]}}
    answer = root.post("/filters", json=body)
    assert answer.status_code == 200, answer.text
    # Then each face shows the other's, with the same pipeline
    by_api = answer.json()["data"]["id"]
    shown = boom(ENV, "filters", "show", by_api)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["name"] == "by-api"
    names = {d["name"]: d for d in root.get("/filters").json()["data"]}
    assert set(names) == {"by-cli", "by-api"}
    pipelines = {json.loads(d["fv"][0]["pipeline"]).__repr__() for d in faces_db["filters"].find()}
    assert pipelines == {repr(GOOD)}


def test_a_reader_closing_early_ends_the_command_quietly(root, faces_db, tmp_path):
    # Given a filter of two versions, each ~90 kB of JSON: more than a pipe holds (64 kB)
    ids = [f"ZTF18{i:07d}" for i in range(5500)]
    long = tmp_path / "long.json"
    long.write_text(
        json.dumps([{"$match": {"objectId": {"$in": ids}}}, {"$project": {"objectId": 1}}])
    )
    added = boom(ENV, "filters", "add", "long", f"@{long}")
    assert added.returncode == 0, added.stderr
    filter_id = faces_db["filters"].find_one({"name": "long"})["_id"]
    again = boom(ENV, "filters", "update", filter_id, f"@{long}")
    assert again.returncode == 0, again.stderr
    # When `boom filters show` is piped into a reader taking one line and leaving
    shell = f'{BIN / "boom"} filters show {filter_id} | head -n 1; echo "boom: ${{PIPESTATUS[0]}}"'
    done = subprocess.run(
        ["bash", "-c", shell], env=ENV, capture_output=True, text=True, timeout=120
    )
    # Then the reader got its line, and boom ended on the broken pipe without a word
    assert done.stdout.splitlines() == ["{", f"boom: {EXIT_BROKEN_PIPE}"]
    assert done.stderr == ""
    # And a reader closing before anything is written is met the same way
    proc = subprocess.Popen(
        [str(BIN / "boom"), "filters", "list"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == EXIT_BROKEN_PIPE
    assert err == ""
