"""The exception hierarchy of boom-tasks.

Driver exceptions (pymongo, redis, confluent-kafka) are translated into these at
the boundary (``boom_tasks.services``), so the rest of the code never catches a
driver's type. The split that matters is *transient* (retry with backoff) versus
*permanent* (dead-letter or quarantine with the reason).
"""


class BoomError(Exception):
    """Base class of every error boom-tasks raises on purpose."""

    def describe(self) -> str:
        """Return the message a person reads: the command line's error line, the API's answer.

        Both faces show this, so one failure reads the same on either.
        """
        return str(self)


class ConfigError(BoomError):
    """The configuration is missing, unreadable or invalid."""


class TransientError(BoomError):
    """A failure that may succeed when retried (a server briefly unreachable)."""


class ServiceUnavailable(TransientError):
    """A server (Valkey, Kafka, MongoDB) could not be reached."""


class NotDurable(TransientError):
    """A server did not confirm in time that a write is durable: retry, never acknowledge."""


class PermanentError(BoomError):
    """A failure that retrying cannot fix: the message goes to the dead-letter queue."""


class BatchVanished(PermanentError):
    """A batch message arrived but its payloads are no longer in Valkey.

    Raised loudly, never swallowed: it means alerts were lost between the bridge
    and the ingest actor (expired TTL, flushed Valkey), and an operator must look.
    """


class AlertRejected(BoomError):
    """One alert packet cannot be ingested; it is quarantined with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownSurvey(ConfigError):
    """A survey name was given that boom-tasks does not know."""


class QueryRejected(PermanentError):
    """The database refused a user's query (filter or API): the message is the server's."""


class QueryTimeout(QueryRejected):
    """A user's query ran past its time budget (``maxTimeMS``)."""


class ResultTooLarge(QueryRejected):
    """A query's result is over the database's document size limit (16 MB).

    One ``$facet`` returns one document: the caller may retry with less input.
    """
