"""Find the enabled science actors: import each configured module and read its ``ACTOR``.

Importing an actor module must be cheap (its heavy imports live in ``setup`` or in
its functions): the chain imports it when declaring the ``<survey>_science`` actor,
in every process, to know which surveys need the hop. ``setup`` runs once per
worker process, after fork (:func:`prepare`), like the ML models' loading.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence

from boom_tasks.errors import ConfigError
from boom_tasks.science.base import ScienceActor
from boom_tasks.surveys import SURVEYS

log = logging.getLogger(__name__)

#: Package holding the shipped and local science actors.
ACTORS_PACKAGE = "actors"
#: Name of the declaration in an actor module.
DECLARATION = "ACTOR"

_prepared: set[str] = set()


def module_path(name: str) -> str:
    """Return the module of a configured name: ``actors.<name>``, or a dotted path as given."""
    return name if "." in name else f"{ACTORS_PACKAGE}.{name}"


def load_actor(name: str) -> ScienceActor:
    """Import one configured actor module and return its declaration.

    Raises
    ------
    ConfigError
        If the module cannot be imported or holds no valid ``ACTOR``.
    """
    path = module_path(name)
    if not all(part.isidentifier() for part in path.split(".")):
        raise ConfigError(
            f"science actor {name!r}: not a module name (a name under {ACTORS_PACKAGE}/ "
            "or a dotted path such as mypackage.myactor)"
        )
    try:
        module = importlib.import_module(path)
    except ImportError as e:
        raise ConfigError(
            f"science actor {name!r}: cannot import {path} ({e}); "
            f"is it a module under {ACTORS_PACKAGE}/?"
        ) from None
    actor = getattr(module, DECLARATION, None)
    if not isinstance(actor, ScienceActor):
        raise ConfigError(
            f"science actor {name!r}: {path} has no {DECLARATION} = ScienceActor(...)"
        )
    unknown = sorted(set(actor.surveys) - set(SURVEYS))
    if unknown:
        raise ConfigError(f"science actor {actor.name}: unknown survey(s) {unknown}")
    return actor


def load_actors(names: Sequence[str]) -> list[ScienceActor]:
    """Return the declarations of the configured actors, refusing two with one name."""
    actors = [load_actor(n) for n in names]
    seen: set[str] = set()
    for a in actors:
        if a.name in seen:
            raise ConfigError(f"two configured science actors are named {a.name!r}")
        seen.add(a.name)
    return actors


def survey_actors(names: Sequence[str], survey: str) -> list[ScienceActor]:
    """Return the configured actors that run on ``survey``, in configuration order."""
    return [a for a in load_actors(names) if survey in a.surveys]


def prepare(actor: ScienceActor) -> None:
    """Run the actor's ``setup`` once in this process (after fork, before its first batch).

    Raises
    ------
    ConfigError
        If ``setup`` raises: the worker cannot run this actor.
    """
    if actor.name in _prepared:
        return
    if actor.setup is not None:
        try:
            actor.setup()
        except Exception as e:  # the actor's own code: a worker cannot run it, say why
            raise ConfigError(f"science actor {actor.name}: setup failed: {e}") from e
    _prepared.add(actor.name)
    log.info("science actor %s (version %s) ready", actor.name, actor.version)
