"""The API of a science actor: a declaration plus a function over a batch of alerts.

A science actor is a module (under the top-level ``actors/`` package) holding one
:class:`ScienceActor` named ``ACTOR``. The broker gives its ``run`` function the
alerts its ``selection`` keeps, each an alert document with its object's history
as of the alert and its cross-matches lifted to the root, exactly as filters see
them::

    {"_id": candid, "objectId", "candidate", "properties", "classifications",
     "science": {...earlier actors}, "prv_candidates": [...], "prv_nondetections": [...],
     "fp_hists": [...], "cross_matches": {"mangrove": [...], ...}, "aliases": {...}}

``run`` returns ``{candid: result}`` for the alerts it has something to say about;
each result is stored as ``science.<name>`` on the alert (with ``version``) and
checked first by :func:`check_result`. A result may carry ``figures`` (name → PNG
bytes): they are stored apart and replaced by the API path serving them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from boom_tasks.errors import BoomError, ConfigError

#: ``run(alerts) -> {candid: result document}``.
RunFn = Callable[[list[dict[str, Any]]], Mapping[int, Mapping[str, Any]]]
#: ``message(alert, stored result) -> JSON-ready document`` published to ``output_topic``.
MessageFn = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]

#: Aux fields a selection may test (on the alert's object); history lists may not:
#: the aux document holds the object's whole history, not the history as of the alert.
AUX_SELECTABLE = ("cross_matches", "aliases")
#: The result key holding figures (name → PNG bytes).
FIGURES_KEY = "figures"
#: A PNG file starts with these bytes.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Largest result document, figures aside (bytes of its text form, roughly BSON size).
MAX_RESULT_BYTES = 256 * 1024
#: Largest figure.
MAX_FIGURE_BYTES = 2 * 1024 * 1024
#: An actor's name: it becomes a field name and part of a URL.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class ScienceResultInvalid(BoomError):
    """An actor returned something that cannot be stored; the message says what and where."""


@dataclass(frozen=True)
class ScienceActor:
    """The declaration of one science actor.

    Attributes
    ----------
    name
        Lower-case identifier; results go to ``science.<name>`` on the alert.
    surveys
        Surveys whose alerts it runs on (``("ZTF",)``).
    run
        The function: a batch of alert documents → ``{candid: result}``.
    selection
        A MongoDB ``$match`` document the broker applies before ``run``: conditions
        on ``cross_matches.*`` and ``aliases.*`` are tested on the object, the rest
        on the alert (``candidate.*``, ``properties.*``, ``classifications.*``...).
    version
        Stored with each result; alerts that already have a result of this version
        are skipped (a replayed batch computes nothing twice).
    time_budget_s
        Seconds ``run`` may take on one batch; past it the results are discarded
        and the batch counts as a failure.
    output_topic
        Kafka topic the selected alerts and their results are published to (JSON).
    message
        Builds the published document (default: :func:`default_message`).
    setup
        Called once per worker process, after fork, before the first batch: import
        heavy packages or load a model there, never at module import.
    description
        One line for ``boom science list``.
    """

    name: str
    surveys: tuple[str, ...]
    run: RunFn = field(repr=False)
    selection: Mapping[str, Any] = field(default_factory=dict)
    version: str = "1"
    time_budget_s: float = 30.0
    output_topic: str | None = None
    message: MessageFn | None = field(default=None, repr=False)
    setup: Callable[[], None] | None = field(default=None, repr=False)
    description: str = ""

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ConfigError(
                f"science actor name {self.name!r}: use lower-case letters, digits and _"
            )
        if not self.surveys:
            raise ConfigError(f"science actor {self.name}: declare at least one survey")
        if self.time_budget_s <= 0:
            raise ConfigError(f"science actor {self.name}: time_budget_s must be positive")
        split_selection(self.name, self.selection)  # refuses a selection it cannot apply

    @property
    def field(self) -> str:
        """Return the alert field this actor writes."""
        return f"science.{self.name}"


def default_message(alert: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    """Return the published document: the alert's ids and position, and the result."""
    candidate = alert.get("candidate", {})
    return {
        "candid": alert["_id"],
        "objectId": alert.get("objectId"),
        "jd": candidate.get("jd"),
        "ra": candidate.get("ra"),
        "dec": candidate.get("dec"),
        "result": dict(result),
    }


def _names_aux(value: Any) -> bool:
    """Tell whether a (nested) query part names an aux field."""
    if isinstance(value, Mapping):
        return any(_is_aux(k) or _names_aux(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_names_aux(v) for v in value)
    return isinstance(value, str) and _is_aux(value.lstrip("$"))


def _is_aux(key: str) -> bool:
    return key.split(".")[0] in AUX_SELECTABLE


def split_selection(
    name: str, selection: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a selection into its alert part and its object (aux) part.

    Raises
    ------
    ConfigError
        If a top-level operator (``$or``...) mixes in aux fields (it cannot be split)
        or the selection names history lists (test those in ``run``).
    """
    alert: dict[str, Any] = {}
    aux: dict[str, Any] = {}
    for key, value in selection.items():
        root = key.split(".")[0]
        if root in ("prv_candidates", "prv_nondetections", "fp_hists"):
            raise ConfigError(
                f"science actor {name}: the selection cannot test {key} (the object's whole "
                "history); count points as of the alert in run(), or use candidate.ndethist"
            )
        if key.startswith("$") and _names_aux(value):
            raise ConfigError(
                f"science actor {name}: {key} mixes alert and cross-match conditions; "
                "put each cross_matches.* condition as a top-level key of the selection"
            )
        (aux if _is_aux(key) else alert)[key] = value
    return alert, aux


def check_result(name: str, candid: int, result: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Check one result document and return it as stored, with its figures apart.

    NumPy scalars become Python numbers. Returns ``(document, figures)``.

    Raises
    ------
    ScienceResultInvalid
        Naming the actor, the candid and the offending field.
    """
    where = f"science actor {name}: result for candid {candid}"
    if not isinstance(result, Mapping):
        raise ScienceResultInvalid(f"{where}: expected a dict, got {type(result).__name__}")
    figures: dict[str, bytes] = {}
    raw_figures = result.get(FIGURES_KEY) or {}
    if not isinstance(raw_figures, Mapping):
        raise ScienceResultInvalid(f"{where}: {FIGURES_KEY} must map names to PNG bytes")
    for fig, data in raw_figures.items():
        _check_key(where, FIGURES_KEY, fig)
        if not isinstance(data, bytes) or not data.startswith(PNG_SIGNATURE):
            raise ScienceResultInvalid(f"{where}: {FIGURES_KEY}.{fig} is not PNG bytes")
        if len(data) > MAX_FIGURE_BYTES:
            raise ScienceResultInvalid(f"{where}: {FIGURES_KEY}.{fig} is over 2 MB")
        figures[str(fig)] = data
    doc = {k: v for k, v in result.items() if k != FIGURES_KEY}
    clean = _clean(where, "", doc)
    if len(repr(clean)) > MAX_RESULT_BYTES:
        raise ScienceResultInvalid(f"{where}: over {MAX_RESULT_BYTES // 1024} kB; store less")
    return clean, figures


def _check_key(where: str, path: str, key: Any) -> None:
    if not isinstance(key, str) or not key or key.startswith("$") or "." in key:
        raise ScienceResultInvalid(
            f"{where}: key {key!r} under {path or 'the result'!r} must be a non-empty "
            "string without '.' or a leading '$'"
        )


def _clean(where: str, path: str, value: Any) -> Any:
    """Return ``value`` as storable plain Python, or raise naming ``path``."""
    if value is None or isinstance(value, bool | str | dt.datetime):
        return value
    if hasattr(value, "dtype") and hasattr(value, "tolist"):
        value = value.tolist()  # a NumPy scalar or array: plain Python, checked below
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise ScienceResultInvalid(f"{where}: {path} = {value} is beyond a 64-bit integer")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ScienceResultInvalid(f"{where}: {path} is {value} (store None instead)")
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        for key in value:
            _check_key(where, path, key)
        return {k: _clean(where, f"{path}.{k}" if path else k, v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [_clean(where, f"{path}[{i}]", v) for i, v in enumerate(value)]
    raise ScienceResultInvalid(
        f"{where}: {path or 'the result'} has type {type(value).__name__}; use numbers, "
        "strings, booleans, None, lists or dicts (figures go under 'figures')"
    )
