"""Request bodies of the ``/filters`` routes, with BOOM's field names where BOOM has them.

``pipeline`` is a JSON array of stages (BOOM's form) or the same as JSON text (how
filters are stored); either way :func:`boom_tasks.filter.validate.validate_pipeline`
judges it, so a malformed one is answered with every problem at once instead of
pydantic's type errors. ``permissions`` is BOOM's map of survey to programids,
``{"ZTF": [1, 2]}``. Unknown fields are refused (400), so a misspelt option is
reported instead of silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from boom_tasks.filter.commands import MAX_NAME_LENGTH
from boom_tasks.filter.testing import Selection, night_jd_range

#: Longest description, changelog or reason: prose, never a document.
MAX_TEXT_LENGTH = 10_000
#: Widest jd window one test may span (BOOM's 7 days): a week of ZTF is millions of alerts.
MAX_TEST_DAYS = 7.0
#: Most objectIds one test may name (BOOM's bound).
MAX_TEST_OBJECTS = 1000
#: Most candids one test may name (BOOM's bound).
MAX_TEST_CANDIDS = 100_000
#: Passing alerts a test answers with unless the request sets ``limit``; the count
#: of all passes is answered regardless.
DEFAULT_TEST_RESULTS = 1000

#: A programid, as ZTF's Avro schema types it (an int): a larger number is no programid,
#: and one past 64 bits could not even be stored.
Programid = Annotated[int, Field(ge=0, lt=2**31)]
#: A candid: a positive 64-bit integer (ZTF's Avro long).
Candid = Annotated[int, Field(ge=0, lt=2**63)]

_PIPELINE_DOC = "stages as a JSON array (or JSON text), e.g. [{'$match': ...}, {'$project': ...}]"
_NIGHT_DOC = "UTC date YYYYMMDD"


def _check_night(night: str | None) -> str | None:
    if night is not None:
        try:
            night_jd_range(night)
        except ValueError:
            raise ValueError(f"expected a date YYYYMMDD, got {night!r}") from None
    return night


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilterPost(_Body):
    """``POST /filters``: a new filter, stored inactive (BOOM's ``FilterPost``)."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    description: str = Field("", max_length=MAX_TEXT_LENGTH)
    survey: str = "ZTF"
    pipeline: Any = Field(description=_PIPELINE_DOC)
    permissions: dict[str, list[Programid]] = Field(
        description="{survey: programids} the filter runs on, within the user's own"
    )


class VersionPost(_Body):
    """``POST /filters/{id}/versions``: a new version (BOOM's ``FilterVersionPost``)."""

    pipeline: Any = Field(description=_PIPELINE_DOC)
    changelog: str = Field("", max_length=MAX_TEXT_LENGTH)
    set_as_active: bool = Field(
        True, description="make it the version that runs (checked first if the filter is active)"
    )


class ActivatePost(_Body):
    """``POST /filters/{id}/activate``: run a version, after the match-rate check."""

    fid: str | None = Field(None, description="version to activate; default: the active_fid")
    reference_night: str | None = Field(
        None, description=f"{_NIGHT_DOC}; default: the newest stored night"
    )
    force: bool = Field(False, description="skip the match-rate check (admins only)")

    @field_validator("reference_night")
    @classmethod
    def _night(cls, night: str | None) -> str | None:
        return _check_night(night)


class DeactivatePost(_Body):
    """``POST /filters/{id}/deactivate``: stop running a filter, recording why."""

    reason: str | None = Field(
        None, max_length=MAX_TEXT_LENGTH, description="default: who deactivated it, and how"
    )


class ValidatePost(_Body):
    """``POST /filters/validate``: check a pipeline without storing anything."""

    pipeline: Any = Field(description=_PIPELINE_DOC)
    survey: str = "ZTF"


class TrialPost(_Body):
    """Which stored alerts a test runs on: at most one way; none means the newest night."""

    night: str | None = Field(None, description=_NIGHT_DOC)
    start_jd: float | None = None
    end_jd: float | None = None
    object_ids: list[str] = Field(default_factory=list, max_length=MAX_TEST_OBJECTS)
    candids: list[Candid] = Field(default_factory=list, max_length=MAX_TEST_CANDIDS)
    limit: int = Field(DEFAULT_TEST_RESULTS, ge=1, description="passing alerts to answer with")

    @field_validator("night")
    @classmethod
    def _night(cls, night: str | None) -> str | None:
        return _check_night(night)

    @model_validator(mode="after")
    def _one_selection(self) -> TrialPost:
        jd = self.start_jd is not None or self.end_jd is not None
        given = [n for n, v in self._ways(jd) if v]
        if len(given) > 1:
            raise ValueError(
                f"give one of night, start_jd/end_jd, object_ids, candids, not {given}"
            )
        if jd:
            if self.start_jd is None or self.end_jd is None:
                raise ValueError("start_jd and end_jd go together")
            if not 0 < self.end_jd - self.start_jd <= MAX_TEST_DAYS:
                raise ValueError(f"end_jd must be after start_jd, by at most {MAX_TEST_DAYS} days")
        return self

    def _ways(self, jd: bool) -> list[tuple[str, Any]]:
        return [
            ("night", self.night),
            ("start_jd/end_jd", jd),
            ("object_ids", self.object_ids),
            ("candids", self.candids),
        ]

    @property
    def selects_nothing(self) -> bool:
        """Tell whether no selection is given, so the newest stored night is tried."""
        jd = self.start_jd is not None or self.end_jd is not None
        return not any(v for _, v in self._ways(jd))

    def selection(self, latest: str | None) -> tuple[Selection | None, str]:
        """Return the selection and its description; ``latest``: the newest stored night.

        The selection is None when no night is given and none is stored: nothing to try.
        """
        if self.candids:
            return Selection(candids=self.candids), f"{len(self.candids)} candids"
        if self.object_ids:
            return Selection(object_ids=self.object_ids), f"{len(self.object_ids)} objects"
        if self.start_jd is not None and self.end_jd is not None:
            jd_range = (self.start_jd, self.end_jd)
            return Selection(jd_range=jd_range), f"jd {self.start_jd} to {self.end_jd}"
        night = self.night or latest
        if night is None:
            return None, "no stored alerts"
        return Selection(jd_range=night_jd_range(night)), f"night {night}"


class StoredTrialPost(TrialPost):
    """``POST /filters/{id}/test``: a stored filter's version over stored alerts."""

    fid: str | None = Field(None, description="version to test; default: the active_fid")


class PipelineTrialPost(TrialPost):
    """``POST /filters/test``: a pipeline given in the body (BOOM's ``FilterTestRequest``)."""

    pipeline: Any = Field(description=_PIPELINE_DOC)
    survey: str = "ZTF"
    permissions: dict[str, list[Programid]] = Field(
        description="{survey: programids} to test with, within the user's own"
    )
