"""The bounds every query runs within, as BOOM's clients expect them.

- a time budget: the request's ``max_time_ms`` or ``api.default_max_time_ms``,
  at most ``api.max_time_ms_cap``, passed to the database as ``maxTimeMS``;
- an answer size: documents are counted as they arrive (their BSON size), and
  past ``api.max_answer_bytes`` the request is refused with a 400 saying how to
  ask for less, before the whole answer is in memory;
- read-only queries: ``$out``, ``$merge`` and server-side JavaScript are refused
  at any depth, as are stages reporting on the server; a join (``$lookup``,
  ``$graphLookup``, ``$unionWith``) may only read collections the user may read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import bson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.collection import Collection

from boom_tasks.api.access import Catalogs
from boom_tasks.api.config import ApiSettings
from boom_tasks.api.errors import BadRequest
from boom_tasks.filter.validate import FORBIDDEN_ANYWHERE, SERVER_STAGES

#: Documents are fetched undecoded, so their size is known before decoding them.
RAW_OPTIONS: CodecOptions = CodecOptions(document_class=RawBSONDocument, tz_aware=True)
#: How a counted document is then decoded.
DECODE_OPTIONS: CodecOptions = CodecOptions(tz_aware=True)

#: Stages reading another collection, with the key naming it.
JOIN_STAGES = {"$lookup": "from", "$graphLookup": "from", "$unionWith": "coll"}
#: Stages holding pipelines of their own, checked like the outer one.
_SUB_PIPELINES = ("$lookup", "$unionWith")


@dataclass(frozen=True)
class Limits:
    """The configured bounds (see :class:`boom_tasks.api.config.ApiSettings`)."""

    default_max_time_ms: int
    max_time_ms_cap: int
    max_answer_bytes: int
    max_cone_positions: int
    max_cone_cells: int

    @classmethod
    def from_settings(cls, api: ApiSettings) -> Limits:
        """Return the bounds of the ``api`` settings section."""
        return cls(
            api.default_max_time_ms,
            api.max_time_ms_cap,
            api.max_answer_bytes,
            api.max_cone_positions,
            api.max_cone_cells,
        )

    def max_time_ms(self, requested: int | None) -> int:
        """Return the time budget of a request that asked for ``requested`` (None: default).

        Raises
        ------
        BadRequest
            If more than ``max_time_ms_cap`` was asked for.
        """
        if requested is None or requested <= 0:
            return self.default_max_time_ms
        if requested > self.max_time_ms_cap:
            raise BadRequest(f"max_time_ms may be at most {self.max_time_ms_cap}")
        return requested

    def budget(self) -> AnswerBudget:
        """Return a fresh answer-size budget for one request."""
        return AnswerBudget(self.max_answer_bytes)


class AnswerBudget:
    """Counts the bytes of one answer as documents arrive, across several queries."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.used = 0

    def read(self, documents: Iterable[RawBSONDocument]) -> Iterator[dict[str, Any]]:
        """Yield each raw document decoded, refusing the answer once it outgrows the cap.

        Raises
        ------
        BadRequest
            When the documents so far exceed ``cap`` bytes.
        """
        for raw in documents:
            self.used += len(raw.raw)
            if self.used > self.cap:
                raise BadRequest(
                    f"the answer is larger than the API's limit of {self.cap} bytes: ask "
                    "for fewer documents (limit), page through them (skip and limit, as "
                    "boom-client's iter_find does) or project fewer fields"
                )
            yield bson.decode(raw.raw, codec_options=DECODE_OPTIONS)


def raw(collection: Collection) -> Collection:
    """Return ``collection`` answering undecoded documents (for :meth:`AnswerBudget.read`)."""
    return collection.with_options(codec_options=RAW_OPTIONS)


def _operators(value: Any) -> Iterator[str]:
    """Yield every ``$`` key at any depth of a query, projection or pipeline."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key.startswith("$"):
                yield key
            yield from _operators(item)
    elif isinstance(value, list):
        for item in value:
            yield from _operators(item)


def check_read_only(value: Any, what: str) -> None:
    """Refuse a filter, projection or pipeline using a writing or JavaScript operator.

    Raises
    ------
    BadRequest
        Naming the operator and why it is refused.
    """
    for operator in _operators(value):
        if operator in FORBIDDEN_ANYWHERE:
            raise BadRequest(f"{what}: {operator} {FORBIDDEN_ANYWHERE[operator]} through the API")


def _stages(pipeline: list[Any]) -> Iterator[tuple[str, Any]]:
    """Yield ``(operator, spec)`` of every stage, those of nested pipelines included."""
    for stage in pipeline:
        if not isinstance(stage, dict) or len(stage) != 1:
            raise BadRequest(
                'each pipeline stage must be an object with one operator, e.g. {"$match": {...}}'
            )
        ((operator, spec),) = stage.items()
        yield operator, spec
        nested: list[Any] = []
        if operator in _SUB_PIPELINES and isinstance(spec, dict):
            nested.append(spec.get("pipeline") or [])
        elif operator == "$facet" and isinstance(spec, dict):
            nested.extend(spec.values())
        for sub in nested:
            if isinstance(sub, list):
                yield from _stages(sub)


def _joined(operator: str, spec: Any) -> str | None:
    """Return the collection a join stage reads, or None if it reads none."""
    if operator == "$unionWith" and isinstance(spec, str):
        return spec
    target = spec.get(JOIN_STAGES[operator]) if isinstance(spec, dict) else None
    if target is not None and not isinstance(target, str):
        raise BadRequest(f"{operator} may only read a collection of this database, by name")
    return target


def _same_database(operator: str, catalogs: Catalogs, source: str, target: str) -> None:
    there, here = catalogs.database(target).name, catalogs.database(source).name
    if there != here:
        raise BadRequest(
            f"{operator}: {target!r} is kept in database {there!r} and {source!r} in "
            f"{here!r}; a join reads only its own database"
        )


def check_pipeline(pipeline: list[Any], catalogs: Catalogs, source: str) -> None:
    """Refuse a pipeline that writes, runs JavaScript, inspects the server or reads elsewhere.

    Raises
    ------
    BadRequest
        For a forbidden stage or operator, or a join into a collection kept in another
        database than ``source`` (the catalogs' ``mongo.catalog_database``): MongoDB
        joins only within one database, and would silently find nothing.
    NotFound
        For a join with a collection the user may not read (as if it did not exist).
    """
    if not pipeline:
        raise BadRequest("the pipeline is empty")
    check_read_only(pipeline, "pipeline")
    for operator, spec in _stages(pipeline):
        if operator in SERVER_STAGES:
            raise BadRequest(f"pipeline: {operator} reports on the server and is not served")
        if operator in JOIN_STAGES:
            target = _joined(operator, spec)
            if target is not None:
                _same_database(operator, catalogs, source, target)
