"""The dashboard application: the overview, queue pages, dead-letter actions, ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from html import escape
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit

import redis
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from boom_tasks.api.users import authenticate
from boom_tasks.dashboard.metrics import Figures, FiguresCollector
from boom_tasks.dashboard.overview import Section, gather, read
from boom_tasks.dashboard.page import overview_page, queue_page
from boom_tasks.dashboard.replays import replay_page
from boom_tasks.dashboard.thumbnails import latest_passes
from boom_tasks.errors import BoomError
from boom_tasks.monitor.costs import cost_totals
from boom_tasks.monitor.pipeline import pipeline_queues
from boom_tasks.monitor.queues import (
    DeadLetterNotFound,
    dead_letters,
    delete_dead_letter,
    queue_counts,
    ready_messages,
    requeue_all_dead_letters,
    requeue_dead_letter,
)
from boom_tasks.monitor.stats import passes_total, stage_totals
from boom_tasks.pictures import render_png
from boom_tasks.pictures.cache import DEFAULT_TTL_S, PictureCache
from boom_tasks.pictures.documents import AlertNotFound, read_view
from boom_tasks.replays.store import ReplayNotFound, get_run
from boom_tasks.services.mongo import get_db
from boom_tasks.services.valkey import get_client, valkey_errors
from boom_tasks.settings import Settings, get_settings
from boom_tasks.surveys import SURVEYS

_basic = HTTPBasic(auto_error=False)

#: What the page does to one dead letter: requeue or delete it.
DeadLetterAction = Callable[[redis.Redis, str, str], object]


def _login(settings: Settings) -> Callable[..., None]:
    """Return a dependency admitting only admin accounts of the API (HTTP Basic)."""

    def check(credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]) -> None:
        user = None
        if credentials is not None:
            user = authenticate(get_db(settings.mongo), credentials.username, credentials.password)
        if user is None or not user.admin:
            raise HTTPException(
                401, "an admin account is required", {"WWW-Authenticate": 'Basic realm="boom"'}
            )

    return check


def _same_origin(request: Request) -> None:
    """Refuse a state-changing request sent by a page of another site (CSRF)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "cross-site request refused")


def _back(queue: str, flash: str) -> RedirectResponse:
    return RedirectResponse(f"/queues/{quote(queue)}?done={quote(flash)}", status_code=303)


class Dashboard:
    """Connections and the known queues of one dashboard process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: Every queue the workers declare (the chain's stages and replays, per survey).
        self.queues = pipeline_queues(SURVEYS.values(), settings)
        #: The stages (queue suffixes) whose costs workers record.
        self.stages = sorted({q.partition("_")[2] for q in self.queues})
        #: Pictures and thumbnails drawn lately: the page reloads every few seconds.
        self.pictures = PictureCache()

    def valkey(self) -> redis.Redis:
        """Return this process's Valkey client."""
        return get_client(self.settings.valkey)

    def known(self, queue: str) -> str:
        """Return ``queue`` if it is one of the pipeline's queues, else answer 404."""
        if queue not in self.queues:
            raise HTTPException(404, f"no queue {queue!r}; known: {', '.join(self.queues)}")
        return queue

    def latest(self) -> dict[str, Section]:
        """Read each survey's latest filter passes (the thumbnails of the overview)."""
        db = get_db(self.settings.mongo)
        return {
            name: read(f"reading {name} filter passes", partial(latest_passes, db, s))
            for name, s in SURVEYS.items()
        }

    def picture(self, survey: str, candid: int, thumb: bool) -> bytes:
        """Return an alert's picture (every filter and alias: the page is for operators)."""
        registered = SURVEYS.get(survey.upper())
        if registered is None:
            raise HTTPException(404, f"no survey {survey!r}; known: {', '.join(SURVEYS)}")

        def draw() -> bytes:
            db = get_db(self.settings.mongo)
            try:
                view = read_view(db, registered, candid, passes={}, alias_surveys=SURVEYS)
            except AlertNotFound as e:
                raise HTTPException(404, str(e)) from None
            return render_png(view, thumb=thumb)

        return self.pictures.get_or_draw((registered.name, candid, thumb), draw)

    def figures(self) -> Figures:
        """Read everything ``/metrics`` exposes."""
        valkey = self.valkey()
        db = get_db(self.settings.mongo)
        overview = gather(self.settings, valkey, db, queues=self.queues)
        totals = read("reading stage totals", lambda: {s: stage_totals(valkey, s) for s in SURVEYS})
        passes = read("reading pass totals", lambda: {s: passes_total(valkey, s) for s in SURVEYS})
        costs = read(
            "reading stage costs", lambda: {s: cost_totals(valkey, s, self.stages) for s in SURVEYS}
        )
        return overview, totals.value or {}, passes.value or {}, costs.value or {}


def _routes(app: FastAPI, dash: Dashboard) -> None:
    settings = dash.settings
    changes = [Depends(_same_origin)]

    @app.get("/", response_class=HTMLResponse, summary="The overview")
    def index() -> str:
        overview = gather(settings, dash.valkey(), get_db(settings.mongo), queues=dash.queues)
        return overview_page(overview, settings.dashboard.refresh_s, dash.latest())

    @app.get("/pictures/{survey}/{candid}.png", summary="One alert's picture (PNG)")
    def picture(survey: str, candid: int, size: Literal["full", "thumb"] = "full") -> Response:
        png = dash.picture(survey, candid, thumb=size == "thumb")
        cache = f"private, max-age={int(DEFAULT_TTL_S)}"
        return Response(png, media_type="image/png", headers={"Cache-Control": cache})

    @app.get("/queues/{queue}", response_class=HTMLResponse, summary="One queue's messages")
    def queue(queue: str, done: str | None = None) -> str:
        q, valkey, listed = dash.known(queue), dash.valkey(), settings.dashboard.listed
        with valkey_errors(f"reading queue {q}"):
            counts = queue_counts(valkey, [q])[0]
            ready = ready_messages(valkey, q, listed)
            dead = dead_letters(valkey, q, listed)
        return queue_page(counts, ready, dead, done)

    @app.get("/replays/{run_id}", response_class=HTMLResponse, summary="One replay run")
    def replay(run_id: str) -> str:
        try:
            return replay_page(get_run(get_db(settings.mongo), settings, run_id))
        except ReplayNotFound as e:
            raise HTTPException(404, str(e)) from None

    @app.post("/queues/{queue}/dead/requeue-all", dependencies=changes)
    def requeue_all(queue: str) -> RedirectResponse:
        q = dash.known(queue)
        with valkey_errors(f"requeueing dead letters of {q}"):
            n = requeue_all_dead_letters(dash.valkey(), q)
        return _back(q, f"requeued {n} dead letters")

    def act(queue: str, redis_id: str, verb: str, action: DeadLetterAction) -> RedirectResponse:
        q = dash.known(queue)
        try:
            with valkey_errors(f"changing dead letter {redis_id} of {q}"):
                action(dash.valkey(), q, redis_id)
        except DeadLetterNotFound as e:
            return _back(q, str(e))
        return _back(q, f"{verb} {redis_id}")

    @app.post("/queues/{queue}/dead/{redis_id}/requeue", dependencies=changes)
    def requeue(queue: str, redis_id: str) -> RedirectResponse:
        return act(queue, redis_id, "requeued", requeue_dead_letter)

    @app.post("/queues/{queue}/dead/{redis_id}/delete", dependencies=changes)
    def delete(queue: str, redis_id: str) -> RedirectResponse:
        return act(queue, redis_id, "deleted", delete_dead_letter)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FiguresCollector(dash.figures))

    @app.get("/metrics", summary="Prometheus metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Return the dashboard for ``settings`` (default: this process's settings)."""
    settings = settings or get_settings()
    login = [Depends(_login(settings))] if settings.dashboard.require_login else []
    app = FastAPI(
        title="boom-tasks dashboard",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=login,
    )

    @app.exception_handler(BoomError)
    def unavailable(_request: Request, exc: BoomError) -> Response:
        # A server down: say which, without a traceback; the page works again once it is up.
        return HTMLResponse(f"<h1>503</h1><p>{escape(str(exc))}</p>", status_code=503)

    _routes(app, Dashboard(settings))
    return app
