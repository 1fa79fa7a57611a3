"""Where a survey's alerts come from: its Kafka cluster, its credentials, its topic.

A survey may name its own cluster, topic and SASL login under ``intake.<SURVEY>``
(Rubin: its own cluster, SCRAM-SHA-512); whatever it leaves out falls back to the
``kafka`` section and to the survey's own topic naming. The password comes from
the environment (``BOOM_INTAKE__<SURVEY>__SASL_PASSWORD``) and leaves its
``SecretStr`` only here, into the librdkafka configuration, which is never logged.
"""

from __future__ import annotations

from typing import Any

from boom_tasks.errors import ConfigError
from boom_tasks.settings import IntakeSettings, KafkaSettings, Settings
from boom_tasks.surveys import Survey

#: Security protocols that log in with a SASL username and password.
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


def intake_topic(
    settings: Settings, survey: Survey, date: str | None = None, topic: str | None = None
) -> str:
    """Return the topic the bridge consumes for ``survey``.

    Parameters
    ----------
    settings
        Process settings.
    survey
        The survey.
    date
        Night as ``YYYYMMDD`` (default tonight, UTC); a survey with one topic
        for all nights ignores it.
    topic
        An explicit topic (``--topic``): it wins over everything.

    Returns
    -------
    str
        ``topic``, else ``intake.<SURVEY>.topic``, else the survey's own naming.
    """
    intake = settings.intake.get(survey.name)
    return topic or (intake.topic if intake else None) or survey.topic(date)


def intake_kafka(settings: Settings, survey: Survey) -> tuple[KafkaSettings, dict[str, Any]]:
    """Return the cluster of ``survey``'s alerts and the librdkafka keys to log in to it.

    Parameters
    ----------
    settings
        Process settings.
    survey
        The survey.

    Returns
    -------
    tuple of (KafkaSettings, dict)
        ``settings.kafka`` with the survey's bootstrap servers, and the extra
        librdkafka configuration: ``security.protocol`` and, for a SASL protocol,
        ``sasl.mechanism``, ``sasl.username`` and ``sasl.password`` (in clear:
        pass it to a client, never to a log line).

    Raises
    ------
    ConfigError
        If a SASL protocol lacks its username or password, or credentials are
        given for a protocol that would not send them.
    """
    intake = settings.intake.get(survey.name) or IntakeSettings()
    kafka = settings.kafka
    if intake.bootstrap_servers:
        kafka = kafka.model_copy(update={"bootstrap_servers": intake.bootstrap_servers})
    security: dict[str, Any] = {"security.protocol": intake.security_protocol}
    password = intake.sasl_password.get_secret_value() if intake.sasl_password else ""
    where = f"intake.{survey.name}"
    if intake.security_protocol not in SASL_PROTOCOLS:
        if intake.sasl_username or password:
            # Credentials given but never sent: the login would fail obscurely, or not at all.
            raise ConfigError(
                f"{where} has SASL credentials but security_protocol is "
                f"{intake.security_protocol}: set it to SASL_SSL or SASL_PLAINTEXT"
            )
        return kafka, security
    if not intake.sasl_username or not password:
        raise ConfigError(
            f"{where}: security_protocol {intake.security_protocol} needs sasl_username and "
            f"sasl_password (set the password with BOOM_INTAKE__{survey.name}__SASL_PASSWORD)"
        )
    security["sasl.mechanism"] = intake.sasl_mechanism
    security["sasl.username"] = intake.sasl_username
    security["sasl.password"] = password
    return kafka, security
