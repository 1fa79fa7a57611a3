"""Apache Kafka on this machine: a KRaft single node from Maven Central jars, no Docker.

Step 1: resolve the broker's jars once per version into ``.local/kafka-<version>/libs``,
        shared by every configuration.
Step 2: write ``<data_dir>/kafka/server.properties`` from the settings.
Step 3: format the storage the first time only (``meta.properties`` absent), so
        topics and offsets survive restarts.
Step 4: hand back the ``java ... kafka.Kafka`` command line for ops/services.py to start.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from _process import BIND_HOST, ServiceError, port_open
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from boom_tasks.settings import PROJECT_ROOT, Settings

logger = logging.getLogger(__name__)

#: Maven project listing the broker's jars; ``kafka.version`` is passed on the command line.
POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"

#: Logging of the broker: everything to ``<data_dir>/kafka.log``, rolled by size.
LOG4J_CONFIG = Path(__file__).resolve().parent / "kafka" / "log4j2.properties"

#: Seconds maven may take: about 40 s from an empty ~/.m2, a few seconds from a warm one.
MAVEN_TIMEOUT_S = 600

#: Seconds ``StorageTool format`` may take (a JVM start and a few files written).
FORMAT_TIMEOUT_S = 120


def libs_dir(version: str) -> Path:
    """Return the folder holding the jars of Kafka ``version``."""
    return PROJECT_ROOT / ".local" / f"kafka-{version}" / "libs"


def install(version: str) -> Path:
    """Resolve the jars of Kafka ``version`` from Maven Central unless already there.

    The jars land in a temporary folder that is renamed into place, so an
    interrupted download never passes for a complete one.

    Returns
    -------
    Path
        The folder of jars, for ``java -cp '<libs>/*'``.

    Raises
    ------
    ServiceError
        If maven is missing or fails (no network, unknown version).
    """
    libs = libs_dir(version)
    jar = libs / f"kafka_2.13-{version}.jar"
    if jar.is_file():
        return libs
    mvn = _tool("mvn")
    libs.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="libs.", dir=libs.parent))
    logger.info("kafka: resolving Apache Kafka %s from Maven Central (about a minute)", version)
    cmd = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies"]
    cmd += [f"-Dkafka.version={version}", f"-DoutputDirectory={tmp}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S)
        if proc.returncode != 0:
            output = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise ServiceError(
                f"maven could not resolve org.apache.kafka:kafka_2.13:{version} "
                f"(check the network and settings.local.kafka_version):\n{output}"
            )
        with contextlib.suppress(OSError):  # fails if another config's `up` won the race
            tmp.rename(libs)
    except subprocess.TimeoutExpired:
        raise ServiceError(f"maven took more than {MAVEN_TIMEOUT_S} s to resolve Kafka") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):  # no empty kafka-<version> folder after a failure
            libs.parent.rmdir()
    if not jar.is_file():
        raise ServiceError(f"maven succeeded but {jar} is missing")
    return libs


def prepare(settings: Settings) -> list[str]:
    """Install, configure and (first time only) format Kafka; return its command line.

    Raises
    ------
    ServiceError
        If java or maven is missing, or installing or formatting fails.
    """
    local = settings.local
    jvm = jvm_command(local.kafka_version, local.path())
    props = write_properties(settings)
    format_once(jvm, props, local.path() / "kafka" / "data")
    return [jvm[0], f"-Xmx{local.kafka_heap}", *jvm[1:], "kafka.Kafka", str(props)]


def jvm_command(version: str, logs_dir: Path) -> list[str]:
    """Return ``java -D... -cp '<libs>/*'``: the start of every Kafka command line.

    Installs Kafka ``version`` first if needed; its log4j2 logs go to ``logs_dir``.

    Raises
    ------
    ServiceError
        If java or maven is missing, or installing fails.
    """
    java = _tool("java")
    libs = install(version)
    jvm = [java, f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", f"-Dkafka.logs.dir={logs_dir}"]
    return [*jvm, "-cp", f"{libs}/*"]


def write_properties(settings: Settings) -> Path:
    """Write ``<data_dir>/kafka/server.properties`` for a KRaft broker+controller node."""
    home = settings.local.path() / "kafka"
    port = address(settings)[1]
    controller = f"{BIND_HOST}:{settings.local.kafka_controller_port}"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": controller,
        "controller.listener.names": "CONTROLLER",
        "listeners": f"PLAINTEXT://{BIND_HOST}:{port},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{BIND_HOST}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(home / "data"),
        "num.partitions": "1",
        "auto.create.topics.enable": "true",
        # One node: every internal topic must make do with one replica.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Tests create consumer groups constantly; don't wait 3 s for each to settle.
        "group.initial.rebalance.delay.ms": "0",
        # ZTF alerts carry three cutouts; leave room for large ones.
        "message.max.bytes": "10485760",
    }
    home.mkdir(parents=True, exist_ok=True)
    path = home / "server.properties"
    lines = ["# Written by ops/services.py from the settings; edits are overwritten."]
    path.write_text("\n".join(lines + [f"{k}={v}" for k, v in props.items()]) + "\n")
    return path


def format_once(jvm: list[str], props: Path, data: Path, scram: Sequence[str] = ()) -> None:
    """Format the storage of a new node (``meta.properties`` absent), else do nothing.

    Parameters
    ----------
    jvm
        Start of the command line, from :func:`jvm_command`.
    props
        The node's ``server.properties``.
    data
        Its ``log.dirs``.
    scram
        SCRAM users to create, as ``StorageTool --add-scram`` takes them
        (``SCRAM-SHA-512=[name=alice,password=...]``): a SASL listener's users
        must exist before the broker starts.
    """
    if (data / "meta.properties").exists():
        return
    cluster_id = _cluster_id()
    logger.info("kafka: formatting %s (cluster id %s)", data, cluster_id)
    cmd = [*jvm, "kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id]
    cmd += ["-c", str(props)]
    for user in scram:
        cmd += ["--add-scram", user]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ServiceError(f"formatting Kafka storage took over {FORMAT_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        raise ServiceError(f"formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")


def _cluster_id() -> str:
    """Return a random cluster id in Kafka's format: 16 bytes, base64url, no padding."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):  # as Kafka's Uuid.randomUuid(): not an option lookalike
            return cid


def address(settings: Settings) -> tuple[str, int]:
    """Return the host and port of the first bootstrap server."""
    first = settings.kafka.bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host, int(port)


def healthy(settings: Settings) -> bool:
    """Return whether the broker answers a metadata request listing at least one broker."""
    if not port_open(*address(settings)):  # spares librdkafka's connection-refused noise
        return False
    # log_level 0: a broker that is still starting is expected, not worth an error line.
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers, "log_level": 0})
    try:
        return bool(admin.list_topics(timeout=3).brokers)
    except KafkaException:
        return False


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ServiceError(
            f"{name} not found: Kafka needs java and maven (apt-get install default-jdk maven)"
        )
    return found
