"""Survey registry: look a survey up by the name given on the command line.

Adding a survey: write its package beside ``ztf/`` and ``lsst/`` (see
``docs/surveys.md``) and add it to :data:`SURVEYS`.
"""

from boom_tasks.errors import UnknownSurvey
from boom_tasks.surveys.base import Survey
from boom_tasks.surveys.lsst import LSST
from boom_tasks.surveys.ztf import ZTF

#: Every survey boom-tasks can ingest, by upper-case name.
SURVEYS: dict[str, Survey] = {ZTF.name: ZTF, LSST.name: LSST}


def get_survey(name: str) -> Survey:
    """Return the survey called ``name`` (case-insensitive).

    Raises
    ------
    UnknownSurvey
        If no such survey is registered.
    """
    try:
        return SURVEYS[name.upper()]
    except KeyError:
        known = ", ".join(sorted(SURVEYS))
        raise UnknownSurvey(f"unknown survey {name!r}; known surveys: {known}") from None


__all__ = ["SURVEYS", "Survey", "get_survey"]
