"""One typed settings object for every boom-tasks process.

Values come, in increasing precedence, from the defaults below, one YAML file
(``config/default.yaml`` unless ``BOOM_CONFIG`` names another), and environment
variables ``BOOM_<SECTION>__<KEY>`` (as BOOM does), e.g. ``BOOM_VALKEY__PORT=6380``,
nested to any depth (``BOOM_INTAKE__LSST__SASL_PASSWORD``: survey keys keep their case).
Unknown keys are rejected when the process starts, with the offending path.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from boom_tasks.api.config import ApiSettings
from boom_tasks.conductor.config import ConductorSettings
from boom_tasks.config_base import PROJECT_ROOT, Section, project_path
from boom_tasks.crossmatch.config import DEFAULT_CATALOGS, CrossmatchCatalog
from boom_tasks.dashboard.config import DashboardSettings
from boom_tasks.errors import ConfigError
from boom_tasks.filter.config import FilterSettings
from boom_tasks.ml.config import MLSettings
from boom_tasks.output.config import OutputSettings
from boom_tasks.replays.config import ReplaySettings
from boom_tasks.schedule.config import ScheduleSettings
from boom_tasks.science.config import ScienceSettings

#: The file read when ``BOOM_CONFIG`` is not set.
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "default.yaml"

#: Prefix of environment overrides; ``__`` separates section and key.
ENV_PREFIX = "BOOM_"


class ValkeySettings(Section):
    """Valkey: the Dramatiq broker, its result backend and the batch store."""

    host: str = "127.0.0.1"
    port: int = Field(6379, ge=1, le=65535)
    db: int = Field(0, ge=0)
    #: Before the bridge commits Kafka offsets and before a stage acks its message, wait
    #: until this server's append-only file has fsynced the batch and the next message
    #: (``WAITAOF``): they then survive a power cut of this machine. Needs AOF on.
    durable_local: bool = True
    #: ...and until this many replicas have them in their AOF (a Valkey replica on
    #: another machine: survives losing this machine entirely). 0: no replica.
    durable_replicas: int = Field(0, ge=0)
    #: Milliseconds to wait for that confirmation; past it the hand-off is retried,
    #: never acknowledged.
    durable_timeout_ms: int = Field(5_000, ge=1)

    @property
    def url(self) -> str:
        """Return the ``redis://`` URL of this server."""
        return f"redis://{self.host}:{self.port}/{self.db}"


class KafkaSettings(Section):
    """Kafka: survey intake (and, later, output)."""

    bootstrap_servers: str = "127.0.0.1:9092"
    #: Consumer group of the bridge; one group per survey is derived from it.
    group_id: str = "boom-bridge"
    #: Partitions of topics the replay producer creates.
    partitions: int = Field(1, ge=1)
    #: Milliseconds before a silent (crashed) bridge's partitions go to another bridge;
    #: shorter than librdkafka's 45 s so a restarted bridge resumes quickly.
    session_timeout_ms: int = Field(10_000, ge=6_000)


class IntakeSettings(Section):
    """Where one survey's alerts come from, when not the defaults of ``kafka`` and the survey.

    Rubin's alerts come from Rubin's own Kafka cluster, with SCRAM credentials;
    ZTF's from another. The password is read from the environment
    (``BOOM_INTAKE__LSST__SASL_PASSWORD``), never from a file in the repository,
    and is never logged (``SecretStr`` prints as stars).
    """

    #: Kafka cluster of the survey's stream (None: ``kafka.bootstrap_servers``).
    bootstrap_servers: str | None = None
    #: Topic to consume (None: the survey's own naming, e.g. ztf_YYYYMMDD_programid1).
    topic: str | None = None
    #: librdkafka ``security.protocol``.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    #: librdkafka ``sasl.mechanism`` (Rubin: SCRAM-SHA-512).
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    #: Confluent-compatible schema registry for the packets' schema ids (LSST); the
    #: schemas shipped by ``lsst-alert-packet`` are the fallback.
    schema_registry_url: str | None = None


class MongoSettings(Section):
    """MongoDB: alerts, auxiliary history, cutouts, catalogs, quarantine."""

    uri: str = "mongodb://127.0.0.1:27017"
    database: str = "boom"
    #: Database holding the archival catalogs (None: ``database``); several broker
    #: databases (a test night, a benchmark) can share one set of loaded catalogs.
    catalog_database: str | None = None
    #: Milliseconds to find a server before an operation fails as unavailable.
    server_selection_timeout_ms: int = Field(5000, ge=1)
    #: What a stage's write waits for before it counts as done (and the stage acks):
    #: "journaled" (``j: true``: in the journal on disk, survives a power cut of a
    #: standalone server), "majority" (``w: majority``: on most members of a replica
    #: set, survives losing a minority of them), "acknowledged" (MongoDB's default:
    #: survives a killed process only).
    write_concern: Literal["journaled", "majority", "acknowledged"] = "journaled"
    #: Milliseconds a "majority" write may wait for the members before it fails (and
    #: the stage retries).
    write_timeout_ms: int = Field(10_000, ge=1)
    #: Count every command this process sends (pymongo command monitoring), with its
    #: time, documents and bytes, per stage (``services.mongo.CommandCounter``). Off by
    #: default: counting bytes re-encodes replies; the pipeline benchmark turns it on.
    command_monitoring: bool = False


class BridgeSettings(Section):
    """The Kafka → Dramatiq bridge."""

    #: Alerts per Dramatiq message; BOOM batches up to 1000.
    batch_size: int = Field(1000, ge=1)
    #: Seconds to wait for a batch to fill before sending what is in hand.
    batch_wait_s: float = Field(2.0, gt=0)
    #: Pause consuming while more alerts than this wait for ingestion.
    max_queued_alerts: int = Field(50_000, ge=1)
    #: Resume consuming once fewer alerts than this wait (hysteresis avoids flapping).
    resume_queued_alerts: int = Field(25_000, ge=0)
    #: Seconds a stored batch lives if nobody deletes it: a leak guard, not a deadline.
    batch_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    #: A pending batch no message names, stored longer ago than this, is an orphan
    #: (its producer died before sending it) and is deleted (``batches.reap_orphans``).
    #: Longer than any producer's retry of a send while Valkey answers.
    orphan_after_s: float = Field(120.0, gt=0)
    #: First and largest wait between reconnection attempts when Kafka is unreachable.
    retry_backoff_s: float = Field(1.0, gt=0)
    max_backoff_s: float = Field(30.0, gt=0)
    #: Seconds after the UTC boundary a bridge following the nights keeps consuming the
    #: previous night's topic, even when at its end: late packets still arrive then.
    previous_night_grace_s: float = Field(1800.0, ge=0)

    @model_validator(mode="after")
    def _hysteresis(self) -> BridgeSettings:
        if self.resume_queued_alerts > self.max_queued_alerts:
            raise ValueError("resume_queued_alerts must not exceed max_queued_alerts")
        return self


class WorkerSettings(Section):
    """Dramatiq actors."""

    #: Retries of a transient failure (database or Valkey briefly down) before dead-lettering.
    max_retries: int = Field(10, ge=0)
    min_backoff_ms: int = Field(1_000, ge=0)
    max_backoff_ms: int = Field(60_000, ge=0)
    #: Milliseconds an actor may run on one batch before Dramatiq interrupts it.
    time_limit_ms: int = Field(10 * 60_000, ge=1_000)
    #: Milliseconds without a heartbeat after which Dramatiq's broker takes a worker
    #: process for dead and requeues its unacknowledged messages (Dramatiq's default,
    #: 60 s, plus its rare maintenance left a dead worker's batch stranded for minutes).
    #: A live worker beats at least every second (each consumer polls Valkey), so 30 s
    #: never mistakes a busy worker for a dead one.
    heartbeat_timeout_ms: int = Field(30_000, ge=5_000)
    #: Broker commands in a million that run the requeue maintenance (Dramatiq: 1,000).
    #: 200,000 (1 in 5) makes a dead worker's messages come back within seconds of the
    #: heartbeat timeout even on an idle queue polled once a second; each run is two
    #: sorted-set range reads when no worker is dead. ``boom-workers`` also requeues
    #: a dead child's messages at once; this is the net when nothing supervises.
    maintenance_chance: int = Field(200_000, ge=1, le=1_000_000)
    #: Seconds a message send (a hand-off, a scheduled retry, a bridge batch) keeps
    #: retrying while Valkey is unreachable before it fails as transient: a Valkey
    #: restart must not dead-letter a batch nor lose a retry.
    enqueue_timeout_s: float = Field(120.0, ge=0)
    #: Deliveries of one message that may end with its worker process dying before the
    #: message is taken for poison: a batch is then split in halves, a single alert is
    #: quarantined with the reason, so a crash-inducing alert is never redelivered forever.
    max_deliveries: int = Field(3, ge=1)
    #: Seconds ``boom-workers`` waits before restarting a dead worker process; doubled
    #: at each quick death up to ``max_restart_backoff_s`` (a crash loop does not spin).
    restart_backoff_s: float = Field(1.0, ge=0)
    max_restart_backoff_s: float = Field(10.0, ge=0)
    #: Seconds a worker process must live for its restart backoff to be reset.
    stable_after_s: float = Field(60.0, ge=0)
    #: Seconds ``boom-workers`` gives its processes to finish their messages on SIGTERM
    #: before SIGKILL (their unfinished messages are then requeued).
    stop_timeout_s: float = Field(60.0, ge=0)


class LocalServicesSettings(Section):
    """Where ``ops/services.py`` installs and runs the local servers."""

    #: Folder for data, logs and pid files, relative to the project root unless absolute.
    data_dir: str = ".local/default"
    #: Apache Kafka release resolved from Maven Central (org.apache.kafka:kafka_2.13).
    kafka_version: str = "4.1.1"
    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    kafka_heap: str = "512m"

    def path(self) -> Path:
        """Return ``data_dir`` as an absolute path."""
        return project_path(self.data_dir)


class Settings(Section):
    """All settings of one process; build it with :func:`get_settings`."""

    valkey: ValkeySettings = ValkeySettings()
    kafka: KafkaSettings = KafkaSettings()
    mongo: MongoSettings = MongoSettings()
    bridge: BridgeSettings = BridgeSettings()
    worker: WorkerSettings = WorkerSettings()
    local: LocalServicesSettings = LocalServicesSettings()
    #: Per-survey intake overrides (cluster, topic, credentials, schema registry).
    intake: dict[str, IntakeSettings] = {}
    #: Catalogs each survey's new objects are matched with, by survey name.
    crossmatch: dict[str, list[CrossmatchCatalog]] = Field(
        default_factory=lambda: _every_survey(DEFAULT_CATALOGS)
    )
    ml: MLSettings = MLSettings()
    #: Science actors run between ML and the filters (docs/science-actors.md).
    science: ScienceSettings = ScienceSettings()
    filters: FilterSettings = FilterSettings()
    output: OutputSettings = OutputSettings()
    api: ApiSettings = ApiSettings()
    dashboard: DashboardSettings = DashboardSettings()
    conductor: ConductorSettings = ConductorSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    replays: ReplaySettings = ReplaySettings()

    @field_validator("crossmatch", "intake")
    @classmethod
    def _known_surveys(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_surveys(value)

    @model_validator(mode="after")
    def _known_model_surveys(self) -> Settings:
        _check_surveys(self.ml.models)
        return self


def _every_survey(catalogs: tuple[CrossmatchCatalog, ...]) -> dict[str, list[CrossmatchCatalog]]:
    """Return the same catalogs for every registered survey (the default crossmatch)."""
    from boom_tasks.surveys import SURVEYS

    return {name: list(catalogs) for name in SURVEYS}


def _check_surveys(by_survey: dict[str, Any]) -> dict[str, Any]:
    """Reject survey keys boom-tasks does not know (a typo would silently do nothing)."""
    from boom_tasks.surveys import SURVEYS

    unknown = sorted(set(by_survey) - set(SURVEYS))
    if unknown:
        raise ValueError(f"unknown survey(s) {unknown}; known: {sorted(SURVEYS)}")
    return by_survey


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """Collect ``BOOM_<SECTION>__<KEY>`` variables, at any depth, into a nested dict.

    ``__`` separates the levels: ``BOOM_BRIDGE__BATCH_SIZE=500`` sets ``bridge.batch_size``
    and ``BOOM_INTAKE__LSST__SASL_PASSWORD=...`` sets ``intake.LSST.sasl_password``.
    Field names are matched lower-cased; keys of a mapping (survey names, which are
    upper-case) are kept as written.

    Raises
    ------
    ConfigError
        If a value is not valid YAML, or a variable reaches inside another's plain value.
    """
    out: dict[str, Any] = {}
    # Sorted, so BOOM_INTAKE__LSST (a YAML mapping) is set before BOOM_INTAKE__LSST__TOPIC.
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path, kind = _env_path(name[len(ENV_PREFIX) :].split("__"))
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name} reaches inside a value another BOOM_ variable sets")
        # Text is taken as it is: a password such as "12:30" or "*x" is not YAML.
        node[path[-1]] = raw if _is_text(kind) else _yaml_value(name, raw)
    return out


def _env_path(parts: list[str]) -> tuple[list[str], Any]:
    """Return the settings path a variable's ``__``-separated parts name, and its type."""
    path: list[str] = []
    kind: Any = Settings
    for part in parts:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(part.lower())
            path.append(part.lower())
            kind = field.annotation if field else None
        elif get_origin(kind) is dict:
            path.append(part)
            kind = get_args(kind)[1]
        else:  # an unknown key: validation rejects it with its path
            path.append(part.lower())
            kind = None
    return path, kind


def _is_text(kind: Any) -> bool:
    """Tell whether a field holds text: str, SecretStr, a Literal of strings, or optional."""
    if kind in (str, SecretStr):
        return True
    args = [a for a in get_args(kind) if a is not type(None)]
    if get_origin(kind) is Literal:
        return all(isinstance(a, str) for a in args)
    return get_origin(kind) in (Union, UnionType) and bool(args) and all(map(_is_text, args))


def _yaml_value(name: str, raw: str) -> Any:
    """Parse a variable's value as YAML: "6380" -> 6380 and "true" -> True, no literal_eval."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        # The value is not quoted back: it may be a credential.
        raise ConfigError(f"environment variable {name} is not a valid YAML value") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"])
        hint = " (unknown key: check its spelling against config/default.yaml)"
        lines.append(f"  {path}: {e['msg']}" + (hint if e["type"] == "extra_forbidden" else ""))
    return "\n".join(lines)


def load_settings(
    path: str | Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Load and validate settings from a YAML file and environment overrides.

    Parameters
    ----------
    path
        YAML file; defaults to ``$BOOM_CONFIG`` or ``config/default.yaml``.
    environ
        Environment to read overrides from; defaults to ``os.environ``.

    Raises
    ------
    ConfigError
        If the file is missing or unreadable, or a value or key is invalid.
    """
    environ = dict(os.environ) if environ is None else environ
    cfg_path = Path(path or environ.get("BOOM_CONFIG") or DEFAULT_CONFIG)
    if not cfg_path.is_absolute() and not cfg_path.exists():
        cfg_path = PROJECT_ROOT / cfg_path
    try:
        data = yaml.safe_load(cfg_path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read configuration {cfg_path}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{cfg_path}: top level must be a mapping of sections")
    data = _merge(data, _env_overrides(environ))
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, str(cfg_path))) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return this process's settings, loaded once on first use."""
    return load_settings()
