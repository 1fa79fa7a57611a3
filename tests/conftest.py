"""Shared fixtures: real local services started through ops/services.py.

Tests that need servers ask for the ``services`` fixture. It starts Valkey, Kafka
and the MongoDB server (SecantusDB) with ``config/test.yaml`` if they are not
already up, and *fails* (never skips) when one cannot start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The test settings; BOOM_TEST_CONFIG points elsewhere to run two suites side by side
#: on one machine (other ports, other data folder).
TEST_CONFIG = Path(os.environ.get("BOOM_TEST_CONFIG", ROOT / "config" / "test.yaml")).resolve()
#: Real data shared by the team; never copied into the repository.
DATA = (ROOT.parent / "shared" / "data").resolve()
ZTF_DATA = DATA / "ztf"

# Every process started by a test (workers, bridge) reads the test settings.
os.environ["BOOM_CONFIG"] = str(TEST_CONFIG)


def pytest_configure(config: pytest.Config) -> None:
    if not ZTF_DATA.is_dir():
        raise pytest.UsageError(f"real test data not found at {DATA} (expected ../shared/data)")


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    from boom_tasks.settings import load_settings

    return load_settings(TEST_CONFIG)


@pytest.fixture(scope="session")
def services(settings):  # type: ignore[no-untyped-def]
    """Start (or reuse) the local servers; fail the session if one cannot start."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "ops" / "services.py"), "up"],
        capture_output=True,
        text=True,
        env={**os.environ, "BOOM_CONFIG": str(TEST_CONFIG)},
        timeout=900,
    )
    if proc.returncode != 0:
        pytest.fail(f"local services did not start:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    return settings


@pytest.fixture
def unique() -> str:
    """A short unique token for topic, group and key names of one test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def mongo_db(services) -> Iterator:  # type: ignore[no-untyped-def]
    """The test database, emptied before the test."""
    import pymongo

    client = pymongo.MongoClient(services.mongo.uri, serverSelectionTimeoutMS=5000)
    db = client[services.mongo.database]
    for name in db.list_collection_names():
        db.drop_collection(name)
    yield db
    client.close()


@pytest.fixture
def catalog_db(services, unique, monkeypatch):
    """A database of this test's own, also the one ``boom catalogs`` commands use.

    Not the shared test database: other suites running at the same time empty that
    one at the start of each of their tests.
    """
    from boom_tasks.settings import get_settings

    name = f"{services.mongo.database}_catalogs_{unique}"
    monkeypatch.setenv("BOOM_MONGO__DATABASE", name)
    get_settings.cache_clear()
    client = pymongo.MongoClient(services.mongo.uri, serverSelectionTimeoutMS=5000)
    yield client[name]
    client.drop_database(name)
    client.close()
    get_settings.cache_clear()
