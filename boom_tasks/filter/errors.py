"""Errors of user filters, one message wherever they are raised.

The command layer (:mod:`boom_tasks.filter.commands`) raises these; the command
line prints ``error.describe()`` and exits with :data:`boom_tasks.entry.EXIT_ERROR`, the
API answers the same text with the status :mod:`boom_tasks.api.errors` gives the
class. So the message must make sense on both faces: name no option of either.
"""

from __future__ import annotations

from boom_tasks.errors import BoomError


class FilterInvalid(BoomError):
    """A filter pipeline was refused; ``problems`` lists every reason, one sentence each.

    All problems are collected before raising, so a filter's author fixes them in
    one round instead of discovering them one submission at a time.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)

    def describe(self) -> str:
        """Return the problems, introduced as what they are (``invalid filter pipeline: ...``)."""
        return "invalid filter pipeline: " + "; ".join(self.problems)


class FilterNotFound(BoomError):
    """No filter (or version) with that id, or one the caller may not see (HTTP 404)."""


class FilterRefused(BoomError):
    """A filter request that cannot be run as given, the message says why (HTTP 400)."""


class FilterForbidden(BoomError):
    """The caller may not do this, whatever the filter: programids beyond theirs (HTTP 403)."""
