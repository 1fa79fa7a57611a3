"""MongoDB client, one per process, and the translation of pymongo's errors.

The client is created lazily and re-created after a fork: pymongo clients are
not fork-safe, and Dramatiq forks its worker processes after importing actors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pymongo
from bson.errors import InvalidDocument
from pymongo import IndexModel
from pymongo import errors as pymongo_errors
from pymongo.collection import Collection
from pymongo.cursor import Cursor
from pymongo.database import Database
from pymongo.write_concern import WriteConcern

from boom_tasks.errors import (
    NotDurable,
    PermanentError,
    QueryRejected,
    QueryTimeout,
    ResultTooLarge,
    ServiceUnavailable,
)
from boom_tasks.services.commands import COMMANDS
from boom_tasks.settings import MongoSettings

_client: pymongo.MongoClient | None = None
_client_pid: int | None = None
_client_uri: str | None = None

#: pymongo errors that mean "the server could not be reached right now".
TRANSIENT = (
    pymongo_errors.AutoReconnect,
    pymongo_errors.ConnectionFailure,
    pymongo_errors.NetworkTimeout,
    pymongo_errors.ServerSelectionTimeoutError,
    pymongo_errors.ExecutionTimeout,
    # A cursor the server forgot (it restarted mid-read): reading again works. Seen by
    # the fault suite as a dead-lettered output batch after a MongoDB restart.
    pymongo_errors.CursorNotFound,
)


def get_client(mongo: MongoSettings) -> pymongo.MongoClient:
    """Return this process's client for ``mongo.uri``, creating it on first use."""
    global _client, _client_pid, _client_uri
    if _client is None or _client_pid != os.getpid() or _client_uri != mongo.uri:
        _client = pymongo.MongoClient(
            mongo.uri,
            serverSelectionTimeoutMS=mongo.server_selection_timeout_ms,
            tz_aware=True,
            # Off by default: counting re-encodes replies (docs/performance.md).
            event_listeners=[COMMANDS] if mongo.command_monitoring else [],
        )
        _client_pid, _client_uri = os.getpid(), mongo.uri
    return _client


def write_concern(mongo: MongoSettings) -> WriteConcern:
    """Return the write concern of ``mongo.write_concern`` (see :class:`MongoSettings`)."""
    if mongo.write_concern == "journaled":
        return WriteConcern(j=True)
    if mongo.write_concern == "majority":
        return WriteConcern(w="majority", wtimeout=mongo.write_timeout_ms)
    return WriteConcern()


def get_db(mongo: MongoSettings) -> Database:
    """Return the broker's database; its writes wait for ``mongo.write_concern``."""
    return get_client(mongo).get_database(mongo.database, write_concern=write_concern(mongo))


def check_durable(error: pymongo_errors.BulkWriteError, what: str) -> None:
    """Raise :class:`NotDurable` if a bulk write's failure is its write concern.

    A bulk write can succeed document by document (or fail only with duplicate
    keys, which a replay expects) and still not be confirmed durable: that must be
    retried, never taken for done.
    """
    concern = error.details.get("writeConcernErrors") or []
    if concern:
        raise NotDurable(f"MongoDB did not confirm {what} durable: {concern[0].get('errmsg')}")


#: Values per ``$in`` when reading many documents by key. SecantusDB re-checks every
#: fetched document against the whole list, so one query costs (list length x
#: matches): 5,000 GCVS rows by _id took 0.57 / 0.62 / 0.98 / 3.6 / 16 s in chunks of
#: 25 / 50 / 100 / 500 / 2,000, and the output stage's read of ~5,000 publication ids
#: in one list kept the database busy for minutes. MongoDB takes larger lists happily.
#: (Catalog pixel ids use their own measured chunk, :data:`boom_tasks.sky.cone.IN_CHUNK`.)
IN_CHUNK = 50


def find_in_chunks(
    collection: Collection,
    field: str,
    values: Sequence[Any],
    projection: dict[str, Any] | None = None,
    *,
    query: dict[str, Any] | None = None,
    chunk: int = IN_CHUNK,
    **options: Any,
) -> Iterator[Cursor]:
    """Yield one cursor per chunk of ``values`` for ``{field: {"$in": chunk}}``.

    Parameters
    ----------
    collection
        The collection to read.
    field, values
        The field matched, and the values it may take (duplicates are dropped).
    projection
        Fields to return; None for whole documents.
    query
        Further conditions every document must meet.
    chunk
        Values per ``$in`` (see :data:`IN_CHUNK`).
    options
        Passed to ``find`` (``max_time_ms``...).

    Driver errors are raised as they are: iterate inside :func:`mongo_errors` (or the
    caller's own translation).
    """
    unique = list(dict.fromkeys(values))
    for k in range(0, len(unique), chunk):
        part = {field: {"$in": unique[k : k + chunk]}}
        if query and field in query:
            where: dict[str, Any] = {"$and": [query, part]}
        else:
            where = {**(query or {}), **part}
        yield collection.find(where, projection, **options)


def find_in(
    collection: Collection,
    field: str,
    values: Sequence[Any],
    projection: dict[str, Any] | None = None,
    *,
    query: dict[str, Any] | None = None,
    chunk: int = IN_CHUNK,
) -> list[dict[str, Any]]:
    """Return every document of :func:`find_in_chunks`, as one list."""
    chunks = find_in_chunks(collection, field, values, projection, query=query, chunk=chunk)
    return [doc for cursor in chunks for doc in cursor]


#: Server error code of a duplicate key: the document is already there.
DUPLICATE_KEY = 11000


def insert_new(collection: Collection, docs: Sequence[dict[str, Any]], what: str) -> list[int]:
    """Insert the documents not stored yet (by ``_id``); return the indexes of those inserted.

    A replay's documents are already there: their duplicate-key errors are expected
    and skipped, as a ``$setOnInsert`` upsert would, for a fraction of the cost (5,000
    pass records: 0.2 s inserted against 1.1-1.5 s upserted on SecantusDB).

    Raises
    ------
    NotDurable, PermanentError, ServiceUnavailable
        As :func:`mongo_errors` translates any other failure.
    """
    if not docs:
        return []
    with mongo_errors(what):
        try:
            collection.insert_many(docs, ordered=False)
        except pymongo_errors.BulkWriteError as e:
            check_durable(e, what)
            errors = e.details.get("writeErrors") or []
            if any(err.get("code") != DUPLICATE_KEY for err in errors):
                raise
            failed = {err["index"] for err in errors}
            return [i for i in range(len(docs)) if i not in failed]
    return list(range(len(docs)))


def get_catalog_db(mongo: MongoSettings) -> Database:
    """Return the database holding the archival catalogs."""
    return get_client(mongo)[mongo.catalog_database or mongo.database]


def create_missing_indexes(collection: Collection, models: Sequence[IndexModel]) -> None:
    """Create the indexes of ``models`` that ``collection`` does not have yet.

    Only missing ones are requested: MongoDB ignores a request for an existing
    index, but SecantusDB answers IndexKeySpecsConflict for an existing 2dsphere
    one, and a worker must be able to restart on a populated database.
    """
    with mongo_errors(f"indexing {collection.name}"):
        existing = {tuple(i["key"]) for i in collection.index_information().values()}
        missing = [m for m in models if tuple(m.document["key"].items()) not in existing]
        if missing:
            collection.create_indexes(missing)


@contextmanager
def mongo_errors(what: str) -> Iterator[None]:
    """Translate pymongo exceptions raised inside the block.

    Parameters
    ----------
    what
        What was being done, for the message (``"writing ZTF alerts"``).

    Raises
    ------
    ServiceUnavailable
        For connection problems and timeouts (worth a retry).
    PermanentError
        For any other server error (a retry would fail the same way).
    """
    try:
        yield
    except TRANSIENT as e:
        raise ServiceUnavailable(f"MongoDB unavailable while {what}: {e}") from None
    except pymongo_errors.WriteConcernError as e:
        raise NotDurable(f"MongoDB did not confirm {what} durable: {e}") from None
    except pymongo_errors.BulkWriteError as e:
        check_durable(e, what)
        raise PermanentError(f"MongoDB error while {what}: {e}") from None
    except pymongo_errors.PyMongoError as e:
        raise PermanentError(f"MongoDB error while {what}: {e}") from None


#: Server error codes of a result over the document size limit: BSONObjectTooLarge, and
#: ``$facet``'s own check of the document it builds (MongoDB 4.4+).
TOO_LARGE_CODES = frozenset({10334, 4031700})


@contextmanager
def user_query(max_time_ms: int) -> Iterator[None]:
    """Translate the errors of a user's query (a filter, an API query) run inside the block.

    Raises
    ------
    QueryTimeout
        If the server stopped it at ``max_time_ms``.
    ResultTooLarge
        If its result is over the server's document size limit (a ``$facet``).
    QueryRejected
        If the server refused it (an unknown operator, a type error at run time), or
        it holds a value BSON cannot encode (an integer over 64 bits, a string with a
        lone surrogate, which a JSON escape can carry): the user's error.
    ServiceUnavailable
        If the server could not be reached.
    """
    try:
        yield
    except pymongo_errors.ExecutionTimeout:
        raise QueryTimeout(f"stopped after its time budget of {max_time_ms} ms") from None
    except pymongo_errors.OperationFailure as e:
        message = (e.details or {}).get("errmsg") or str(e)
        if e.code in TOO_LARGE_CODES:
            raise ResultTooLarge(message) from None
        raise QueryRejected(message) from None
    except pymongo_errors.ProtocolError as e:
        # The driver's own check of a reply over its size limit: a server that does not
        # enforce 16 MB itself (the local stand-in) sends the oversized result anyway.
        if "larger than server max message size" in str(e):
            raise ResultTooLarge(str(e)) from None
        raise ServiceUnavailable(f"MongoDB reply unreadable while running a query: {e}") from None
    except TRANSIENT as e:
        raise ServiceUnavailable(f"MongoDB unavailable while running a query: {e}") from None
    except (InvalidDocument, OverflowError, UnicodeEncodeError) as e:
        raise QueryRejected(f"the query cannot be encoded as BSON: {e}") from None


def user_aggregate(
    collection: Collection, pipeline: list[dict[str, Any]], max_time_ms: int
) -> list[dict[str, Any]]:
    """Run a user's aggregation (a filter) within a time budget.

    Raises
    ------
    QueryTimeout, QueryRejected, ServiceUnavailable
        As :func:`user_query` translates them.
    """
    with user_query(max_time_ms):
        return list(collection.aggregate(pipeline, maxTimeMS=max_time_ms))
