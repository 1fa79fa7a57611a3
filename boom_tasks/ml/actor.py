"""The ML actor of a survey: properties and classifications of a batch of candids.

Models are loaded once per worker process, after fork (ONNX sessions are not
fork-safe and loading them in every batch would dominate its cost).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq

from boom_tasks.broker import queue_name, stage_actor
from boom_tasks.config_base import project_path
from boom_tasks.messages import check_version, hand_on
from boom_tasks.ml.registry import LoadedModel, load_models
from boom_tasks.ml.stage import enrich_batch
from boom_tasks.services.mongo import get_db
from boom_tasks.settings import Settings
from boom_tasks.surveys.base import Survey

log = logging.getLogger(__name__)

_models: dict[str, list[LoadedModel]] = {}


def survey_models(survey: Survey, settings: Settings) -> list[LoadedModel]:
    """Return the survey's models, loading them on first use in this process.

    Raises
    ------
    ModelConfigError
        If a model entry does not fit its file (see :mod:`boom_tasks.ml.registry`).
    """
    if survey.name not in _models:
        ml = settings.ml
        _models[survey.name] = load_models(ml, survey.name, project_path(ml.models_dir))
    return _models[survey.name]


def declare(
    broker: dramatiq.Broker,
    survey: Survey,
    settings: Settings,
    next_stage: dramatiq.Actor | None,
) -> dramatiq.Actor:
    """Declare the ``<survey>_ml`` actor on its own queue."""
    name = queue_name(survey, "ml")

    @stage_actor(broker, name, settings.worker)
    def ml(candids: list[int], times: dict[str, float], version: int = 1) -> dict[str, Any]:
        check_version(name, version)
        started = time.monotonic()
        models = survey_models(survey, settings)
        result = enrich_batch(get_db(settings.mongo), survey, models, candids)
        log.info(
            "%s: %d alerts enriched (scored %s, skipped %s) in %.2fs",
            name,
            result.alerts,
            result.scored,
            result.skipped,
            time.monotonic() - started,
        )
        # Every candid goes on, enriched now or before (a replay): filters decide again.
        hand_on(settings, survey.name, "enriched", candids, times, next_stage)
        return {"alerts": result.alerts}

    return ml
