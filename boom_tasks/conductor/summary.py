"""What ``boom night`` prints last: the conductor's report and what the broker made.

The night report (counts, stops, latency) is followed by what a newcomer wants to
see of the broker: objects matched per catalog, alerts scored per model, alerts
studied per science actor, passes per filter, messages per output topic, and the
commands to look further.
"""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from boom_tasks.conductor.render import format_report
from boom_tasks.conductor.report import NoNightData, build_report, store_report
from boom_tasks.filter.store import FILTERS
from boom_tasks.output.publish import topic_name
from boom_tasks.science.loader import survey_actors
from boom_tasks.services.mongo import get_db, mongo_errors
from boom_tasks.settings import Settings
from boom_tasks.surveys import Survey

#: Published alerts shown with ``boom-print`` at the end.
SHOWN = 3


def _broker_lines(
    db: Database, settings: Settings, survey: Survey, names: dict[str, str]
) -> list[str]:
    lines = []
    for spec in settings.crossmatch.get(survey.name, []):
        n = db[survey.aux].count_documents({f"cross_matches.{spec.catalog}.0": {"$exists": True}})
        lines.append(f"  matched with {spec.catalog}: {n} objects")
    for model in settings.ml.models.get(survey.name, []):
        n = db[survey.alerts].count_documents({f"classifications.{model.name}": {"$exists": True}})
        lines.append(f"  scored by {model.name}: {n} alerts")
    for actor in survey_actors(settings.science.actors, survey.name):
        n = db[survey.alerts].count_documents({f"science.{actor.name}": {"$exists": True}})
        to = f", published to {actor.output_topic}" if actor.output_topic else ""
        lines.append(f"  science actor {actor.name}: {n} alerts{to}")
    published = db[survey.publications].count_documents({})
    out = settings.output
    lines.append(f"  published to {topic_name(out.results_topic, survey.name)}: {published} passes")
    if out.per_filter_topics:
        for fid, name in sorted(names.items(), key=lambda kv: kv[1]):
            n = db[survey.publications].count_documents({"filter_id": fid})
            lines.append(f"  published to {topic_name(out.filter_topic, survey.name, name)}: {n}")
    return lines


def _look_further(settings: Settings, survey: Survey, night: str) -> list[str]:
    topic = topic_name(settings.output.results_topic, survey.name)
    dash = settings.dashboard
    # The demo's database is not the configured one: the commands must name it too.
    env = ""
    if settings.mongo.database == settings.conductor.demo_database:
        env = f"BOOM_MONGO__DATABASE={settings.mongo.database} "
    return [
        "Look further:",
        f"  .venv/bin/boom-print {topic} --from-beginning --max {SHOWN} --stamps stamps/",
        f"  {env}.venv/bin/boom night report {survey.name} {night}",
        f"  {env}.venv/bin/boom-dashboard   # then open http://{dash.host}:{dash.port}/",
    ]


def filter_names(db: Database, survey: Survey) -> dict[str, str]:
    """Return filter id -> name of ``survey``'s filters, to print names beside ids."""
    with mongo_errors("reading filter names"):
        return {str(f["_id"]): f["name"] for f in db[FILTERS].find({"survey": survey.name})}


def closing_report(settings: Settings, survey: Survey, night: str) -> str:
    """Build and store the night's report; return it with the broker's figures, as text."""
    db = get_db(settings.mongo)
    try:
        report: dict[str, Any] | None = build_report(settings, survey, night)
    except NoNightData as e:
        report = None
        head = f"no night report: {e}"
    names = filter_names(db, survey)
    with mongo_errors(f"counting what the broker made of {survey.name} night {night}"):
        broker = _broker_lines(db, settings, survey, names)
    if report is not None:
        store_report(db, survey, report)
        head = format_report(report, names)
    return "\n".join([head, *broker, *_look_further(settings, survey, night)])
