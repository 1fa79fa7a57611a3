"""The bridge reads each survey's own cluster and topic, with a SASL login (Rubin: SCRAM-SHA-512).

The first tests are pure: topic precedence, the librdkafka configuration, the
environment overrides. The others run a SECOND Kafka broker, started here on free
loopback ports with a SCRAM-SHA-512 listener (users created when its storage is
formatted, as on Rubin's cluster), and feed it real Rubin packets.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.error import KafkaException
from pydantic import SecretStr

from boom_tasks.batches import BatchRef, complete_batch, load_batch, pending_alerts
from boom_tasks.bridge.consumer import Bridge, bridge_group
from boom_tasks.bridge.intake import intake_kafka, intake_topic
from boom_tasks.errors import ConfigError
from boom_tasks.services.kafka import consumer_config, ensure_topic, producer_config
from boom_tasks.services.valkey import get_client
from boom_tasks.settings import IntakeSettings, KafkaSettings, Settings, load_settings
from boom_tasks.surveys.lsst import LSST
from boom_tasks.surveys.ztf import ZTF
from tests.conftest import ROOT, TEST_CONFIG

#: Real Rubin packets (Confluent wire format), shared by the team beside the repository.
LSST_PACKETS = (ROOT.parent / "shared" / "data" / "lsst" / "fink").resolve()
#: Ports the project's own servers use (default and test configurations, docker): never ours.
RESERVED_PORTS = {9092, 9093, 19092, 19093, 29092, 29093}
#: Valkey database of the ``boom-bridge LSST`` subprocess: its batches and Dramatiq
#: messages stay apart from other tests' LSST queues (dashboard 8, monitor 7, api 6).
BRIDGE_DB = 5
#: Seconds the second broker may take to format and answer (a JVM start: ~10 s).
BROKER_START_S = 90.0
USER = "alice"


# ---- pure: topic, configuration, environment ----------------------------------------


def _with_intake(settings: Settings, survey: str = "LSST", **intake: Any) -> Settings:
    return settings.model_copy(update={"intake": {survey: IntakeSettings(**intake)}})


def test_topic_explicit_then_configured_then_the_surveys_own(settings):
    # Given no intake section, Then each survey names its own topic; LSST ignores the date
    assert intake_topic(settings, ZTF, "20240617") == "ztf_20240617_programid1"
    assert intake_topic(settings, LSST, "20240617") == LSST.topic() == "lsst-alerts-v10"
    # Given a configured topic, Then it wins over the survey's naming
    configured = _with_intake(settings, topic="lsst-alerts-v11")
    assert intake_topic(configured, LSST, "20240617") == "lsst-alerts-v11"
    assert intake_topic(configured, ZTF, "20240617") == "ztf_20240617_programid1"
    # And an explicit --topic wins over both
    assert intake_topic(configured, LSST, "20240617", topic="replay-1") == "replay-1"


def test_plaintext_intake_uses_the_surveys_servers_and_no_login(settings):
    # Given no intake section, Then the kafka section as it is, in plaintext
    kafka, security = intake_kafka(settings, LSST)
    assert kafka == settings.kafka and security == {"security.protocol": "PLAINTEXT"}
    # Given the survey's own servers, Then only the servers change
    kafka, security = intake_kafka(_with_intake(settings, bootstrap_servers="h:1"), LSST)
    assert kafka.bootstrap_servers == "h:1" and kafka.group_id == settings.kafka.group_id
    assert security == {"security.protocol": "PLAINTEXT"}


def test_sasl_intake_gives_librdkafka_the_login(settings):
    rubin = _with_intake(
        settings,
        bootstrap_servers="usdf-alert-stream.example:9094",
        security_protocol="SASL_PLAINTEXT",
        sasl_username=USER,
        sasl_password=SecretStr("s3cret"),
    )
    kafka, security = intake_kafka(rubin, LSST)
    assert kafka.bootstrap_servers == "usdf-alert-stream.example:9094"
    assert security == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": USER,
        "sasl.password": "s3cret",
    }


@pytest.mark.parametrize(
    "login",
    [{}, {"sasl_username": USER}, {"sasl_password": SecretStr("p")}, {"sasl_password": ""}],
)
def test_sasl_without_username_or_password_is_refused(settings, login):
    broken = _with_intake(settings, security_protocol="SASL_SSL", **login)
    with pytest.raises(ConfigError, match=r"intake\.LSST.*BOOM_INTAKE__LSST__SASL_PASSWORD"):
        intake_kafka(broken, LSST)


def test_credentials_that_would_never_be_sent_are_refused(settings):
    # Given a login but the default PLAINTEXT protocol (the variable was forgotten)
    forgot = _with_intake(settings, sasl_username=USER, sasl_password=SecretStr("never-shown"))
    # Then the bridge refuses to start, without quoting the password
    with pytest.raises(ConfigError, match="security_protocol is PLAINTEXT") as err:
        intake_kafka(forgot, LSST)
    assert "never-shown" not in str(err.value)


def test_environment_sets_a_surveys_login_and_the_password_never_prints():
    # Given a password that YAML would mangle (a time, an alias, a comment)
    password = "12:30 *x #y"
    env = {
        "BOOM_INTAKE__LSST__SECURITY_PROTOCOL": "SASL_SSL",
        "BOOM_INTAKE__LSST__SASL_USERNAME": USER,
        "BOOM_INTAKE__LSST__SASL_PASSWORD": password,
        "BOOM_INTAKE__ZTF__TOPIC": "ztf_replay",
        "BOOM_VALKEY__PORT": "6390",
    }
    # When the settings are loaded
    s = load_settings(TEST_CONFIG, environ=env)
    # Then the survey keys keep their case and the password arrives unchanged
    lsst = s.intake["LSST"]
    assert lsst.security_protocol == "SASL_SSL" and lsst.sasl_username == USER
    assert lsst.sasl_password is not None and lsst.sasl_password.get_secret_value() == password
    assert s.intake["ZTF"].topic == "ztf_replay" and s.valkey.port == 6390
    # And no printed form of the settings shows it
    for shown in (repr(s), str(s), str(lsst), repr(lsst), s.model_dump_json()):
        assert password not in shown


def test_a_lower_case_survey_key_is_reported_not_ignored():
    with pytest.raises(ConfigError, match="unknown survey"):
        load_settings(TEST_CONFIG, environ={"BOOM_INTAKE__Lsst__TOPIC": "t"})


# ---- a second Kafka with a SCRAM-SHA-512 listener -----------------------------------


@dataclasses.dataclass(frozen=True)
class ScramKafka:
    """The second broker: where it listens, its user's password, its logs."""

    bootstrap: str
    password: str
    home: Path

    def login(self, password: str | None = None) -> dict[str, str]:
        """Return librdkafka's SASL keys for ``alice`` (with another password if given)."""
        return {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": USER,
            "sasl.password": self.password if password is None else password,
        }

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.bootstrap, group_id="boom-bridge-sasl")


def _free_ports(n: int) -> list[int]:
    """Return ``n`` distinct free loopback ports chosen by the kernel (never the reserved ones)."""
    socks = []
    try:
        while len(socks) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        ports = [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
    assert not RESERVED_PORTS & set(ports)
    return ports


def _broker_properties(home: Path, port: int, controller: int, admin_pw: str) -> Path:
    """Write a KRaft broker+controller whose only client listener is SASL_PLAINTEXT/SCRAM."""
    jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required "
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller}",
        "controller.listener.names": "CONTROLLER",
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": (
            f'{jaas}username="admin" password="{admin_pw}";'
        ),
        "log.dirs": str(home / "data"),
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "message.max.bytes": "10485760",
    }
    path = home / "server.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def _answers(broker: ScramKafka) -> bool:
    conf = {"bootstrap.servers": broker.bootstrap, "log_level": 0, **broker.login()}
    try:
        return bool(AdminClient(conf).list_topics(timeout=3).brokers)
    except KafkaException:
        return False


@pytest.fixture(scope="module")
def scram_kafka(services, tmp_path_factory) -> Iterator[ScramKafka]:
    """Start a second Kafka (jars of ops/_kafka.py) with SCRAM users; stop it at the end."""
    sys.path.insert(0, str(ROOT / "ops"))
    import _kafka
    import _process

    home = tmp_path_factory.mktemp("scram-kafka")
    port, controller = _free_ports(2)
    admin_pw, user_pw = secrets.token_hex(12), f"pw-{secrets.token_hex(12)}"
    props = _broker_properties(home, port, controller, admin_pw)
    jvm = _kafka.jvm_command(services.local.kafka_version, home)
    users = [f"SCRAM-SHA-512=[name=admin,password={admin_pw}]"]
    users.append(f"SCRAM-SHA-512=[name={USER},password={user_pw}]")
    _kafka.format_once(jvm, props, home / "data", scram=users)
    cmd = [jvm[0], "-Xmx384m", *jvm[1:], "kafka.Kafka", str(props)]
    pid = _process.spawn(cmd, home / "kafka.out", home / "kafka.pid", home)
    broker = ScramKafka(f"127.0.0.1:{port}", user_pw, home)
    try:
        if not _process.wait_for(lambda: _answers(broker), BROKER_START_S):
            pytest.fail(f"SCRAM Kafka did not start:\n{_process.tail(home / 'kafka.log')}")
        yield broker
    finally:
        # The properties file is unique to this broker: a recycled pid is never ours.
        _process.stop(pid, str(props), timeout_s=30)


def _produce_rubin(broker: ScramKafka, topic: str, n: int, partitions: int = 2) -> list[bytes]:
    packets = [p.read_bytes() for p in sorted(LSST_PACKETS.glob("*.avro"))[:n]]
    assert len(packets) == n and all(p[0] == 0 for p in packets)  # Confluent wire format
    ensure_topic(broker.kafka, topic, partitions, **broker.login())
    producer = Producer(producer_config(broker.kafka, **broker.login()))
    for i, packet in enumerate(packets):
        producer.produce(topic, packet, partition=i % partitions)
    assert producer.flush(30) == 0
    return packets


def test_bridge_consumes_rubin_packets_over_scram(scram_kafka, services, unique, caplog):
    # Given real Rubin packets on a SCRAM-SHA-512 cluster, and a survey configured for it
    caplog.set_level(logging.DEBUG)
    topic = f"lsst-scram-{unique}"
    packets = _produce_rubin(scram_kafka, topic, 12)
    survey = dataclasses.replace(LSST, name=f"T{unique}")
    intake = IntakeSettings(
        bootstrap_servers=scram_kafka.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_username=USER,
        sasl_password=SecretStr(scram_kafka.password),
    )
    bridge_cfg = services.bridge.model_copy(update={"batch_size": 5, "batch_wait_s": 0.3})
    cfg = services.model_copy(update={"intake": {survey.name: intake}, "bridge": bridge_cfg})
    sent: list[BatchRef] = []
    # When the bridge runs to the end of the topic
    bridge = Bridge(cfg, survey, topic, lambda ref, _at: sent.append(ref), exit_on_eof=True)
    stats = bridge.run()
    # Then every packet is in a Valkey batch, once
    valkey = get_client(services.valkey)
    stored = [p for ref in sent for p in load_batch(valkey, ref.key) or []]
    assert sorted(stored) == sorted(packets) and stats.consumed == 12
    assert all(ref.count <= 5 for ref in sent)
    # And the offsets were committed on the SCRAM cluster, after queueing
    group = bridge_group(bridge.kafka, survey)
    consumer = Consumer(consumer_config(scram_kafka.kafka, group, **scram_kafka.login()))
    parts = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    committed = consumer.committed(parts, timeout=10)
    consumer.close()
    assert sum(tp.offset for tp in committed) == 12
    # And no log line (librdkafka's included) shows the password
    assert scram_kafka.bootstrap in caplog.text
    assert scram_kafka.password not in caplog.text
    for ref in sent:
        complete_batch(valkey, survey, ref.key)
    assert pending_alerts(valkey, survey) == 0


def _bridge_env(broker: ScramKafka, password: str) -> dict[str, str]:
    return {
        **os.environ,
        "BOOM_CONFIG": str(TEST_CONFIG),
        "BOOM_VALKEY__DB": str(BRIDGE_DB),
        "BOOM_INTAKE__LSST__BOOTSTRAP_SERVERS": broker.bootstrap,
        "BOOM_INTAKE__LSST__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "BOOM_INTAKE__LSST__SASL_USERNAME": USER,
        "BOOM_INTAKE__LSST__SASL_PASSWORD": password,
    }


def _run_bridge(broker: ScramKafka, topic: str, password: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "boom_tasks.bridge", "LSST", "--topic", topic]
    cmd += ["--exit-on-eof", "--log-level", "DEBUG"]
    return subprocess.run(
        cmd, env=_bridge_env(broker, password), capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def bridge_valkey(services) -> Iterator[redis.Redis]:
    """Valkey database of the bridge subprocess, emptied before and after the test."""
    client = redis.Redis.from_url(services.valkey.model_copy(update={"db": BRIDGE_DB}).url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_boom_bridge_lsst_reads_its_login_from_the_environment(scram_kafka, bridge_valkey, unique):
    # Given Rubin packets on the SCRAM cluster
    topic = f"lsst-cli-{unique}"
    packets = _produce_rubin(scram_kafka, topic, 8, partitions=1)
    # When `boom-bridge LSST --topic T --exit-on-eof` runs with the login in BOOM_INTAKE__LSST__*
    proc = _run_bridge(scram_kafka, topic, scram_kafka.password)
    out = proc.stdout + proc.stderr
    # Then it consumed the survey's cluster, queued every packet for LSST ingestion, exited 0
    assert proc.returncode == 0, out
    assert f"consuming {topic} from {scram_kafka.bootstrap}" in out
    keys = list(bridge_valkey.hkeys("boom:lsst:pending"))
    stored = [p for key in keys for p in load_batch(bridge_valkey, key.decode()) or []]
    assert sorted(stored) == sorted(packets)
    assert pending_alerts(bridge_valkey, LSST) == 8
    # And its whole output, at DEBUG, never shows the password
    assert scram_kafka.password not in out


def test_a_wrong_password_stops_the_bridge_with_a_clear_error(scram_kafka, bridge_valkey, unique):
    # Given a topic on the SCRAM cluster and a wrong password in the environment
    topic = f"lsst-denied-{unique}"
    _produce_rubin(scram_kafka, topic, 1, partitions=1)
    wrong = f"wrong-{secrets.token_hex(8)}"
    # When the bridge starts
    started = time.monotonic()
    proc = _run_bridge(scram_kafka, topic, wrong)
    out = proc.stdout + proc.stderr
    # Then it stops at once (a wrong password stays wrong: no retry loop) with exit code 2,
    # naming the cluster, the user and what to check, without a traceback
    assert proc.returncode == 2, out
    assert time.monotonic() - started < 60
    assert f"Kafka at {scram_kafka.bootstrap} refused the login of user '{USER}'" in out
    assert "Authentication failed" in out and "BOOM_INTAKE__LSST__SASL_PASSWORD" in out
    assert "Traceback" not in out
    # And nothing was queued, and neither password appears anywhere in the output
    assert pending_alerts(bridge_valkey, LSST) == 0
    assert wrong not in out and scram_kafka.password not in out


def test_librdkafka_config_dump_redacts_the_password(scram_kafka, caplog):
    # Given a client of our configuration with librdkafka's config dump switched on
    caplog.set_level(logging.DEBUG, logger="librdkafka")
    conf = consumer_config(scram_kafka.kafka, "dump", **scram_kafka.login(), debug="conf")
    consumer = Consumer(conf)
    # When it serves its log queue
    consumer.poll(1.0)
    consumer.close()
    # Then the dump lists the login keys but never the password
    assert "sasl.password" in caplog.text
    assert scram_kafka.password not in caplog.text
