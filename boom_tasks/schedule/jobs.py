"""What a scheduled job is: a ``module:function`` reference, called with the settings.

The job store keeps the reference as text, never a pickled function, so a job
stored by one version of boom-tasks still runs after an upgrade moves code, and
a typo is reported with the reference when the job runs or is added.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

from boom_tasks.errors import ConfigError
from boom_tasks.schedule.config import check_job_ref

log = logging.getLogger(__name__)

#: The function APScheduler stores for every job: it resolves and calls the reference.
RUNNER_REF = "boom_tasks.schedule.jobs:run_reference"


def resolve(ref: str) -> Callable[..., Any]:
    """Return the function ``ref`` (``package.module:function``) names.

    Raises
    ------
    ConfigError
        If ``ref`` is malformed, its module cannot be imported or has no such callable.
    """
    try:
        check_job_ref(ref)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    module_name, name = ref.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"job {ref}: cannot import {module_name} ({e})") from None
    func = getattr(module, name, None)
    if not callable(func):
        raise ConfigError(f"job {ref}: {module_name} has no function {name}")
    return func


def check_call(ref: str, kwargs: dict[str, Any]) -> None:
    """Check that the job ``ref`` can be called as ``function(settings, **kwargs)``.

    Raises
    ------
    ConfigError
        If the function cannot be found (see :func:`resolve`) or does not take these
        arguments: found when the job is added, not when it first runs.
    """
    func = resolve(ref)
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature: it tells when run
        return
    try:
        signature.bind(None, **kwargs)
    except TypeError as e:
        raise ConfigError(f"job {ref} cannot be called with kwargs {kwargs}: {e}") from None


def run_reference(ref: str, kwargs: dict[str, Any] | None = None) -> Any:
    """Run the job ``ref`` as ``function(settings, **kwargs)``; return what it returns.

    The settings are this process's (read once at its start), so a job sees the
    same configuration as the scheduler that runs it.
    """
    from boom_tasks.settings import get_settings

    func = resolve(ref)
    log.info("schedule: running %s", ref)
    return func(get_settings(), **(kwargs or {}))
