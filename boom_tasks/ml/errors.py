"""Errors of the ML stage."""

from __future__ import annotations

from boom_tasks.errors import BoomError, ConfigError


class ModelConfigError(ConfigError):
    """A model entry cannot be used: missing file, unknown input, wrong shape."""


class InputUnavailable(BoomError):
    """One alert lacks what a model needs (old schema, JPEG cutouts, no history).

    Not an error of the batch: the model is skipped for that alert and ``reason``
    is recorded beside its classifications.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
