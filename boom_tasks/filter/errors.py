"""Errors of user filters."""

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
