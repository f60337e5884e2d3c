"""The dashboard's Starlette app: four read-only pages rendered server-side, and one stylesheet.

No JavaScript and nothing from another origin: the Content-Security-Policy allows only this
server, so a template that ever referenced a CDN would break visibly in the browser test. Pages read
the store on Starlette's thread pool (plain `def` endpoints), so a slow query never stalls the
daemon's health probes. The customer lookup is a POST form, so whatever is typed (even an email by
mistake) never lands in a URL; a found customer is shown at /customer/<profile id>.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engine import charts
from sync.config import Config
from sync.dashboard import fields_view, lookup, models_view, overview
from sync.fields import available_outputs, rule_pairs

STATIC = Path(__file__).parent / "static"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
MAX_FORM_BYTES = 4096


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("sync.dashboard", "templates"), autoescape=select_autoescape(["html"])
    )
    env.filters["when"] = _when
    env.filters["num"] = lambda v: f"{v:,}" if isinstance(v, int) else f"{v:,.4g}"
    env.globals.update(size=charts.SIZE, pad=charts.PAD)
    return env


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.update(HEADERS)
        return response


class Dashboard:
    """Holds what the pages read: the store, the current config, and the scheduler's next run."""

    def __init__(
        self, engine: Engine, config: Callable[[], Config], next_run: Callable[[], datetime | None] | None
    ) -> None:
        self.engine = engine
        self.config = config
        self.next_run = next_run or (lambda: None)
        self.env = _environment()

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        html = self.env.get_template(template).render(
            base=base, page=template.removesuffix(".html"), **context
        )
        return HTMLResponse(html, status)

    def overview(self, request: Request) -> Response:
        runs = overview.recent_runs(self.engine)
        rows = overview.run_rows(runs)
        return self.page(
            request,
            "overview.html",
            connectors=overview.connector_states(self.engine, self.config(), runs),
            runs=rows,
            totals=overview.totals(rows),
            columns=overview.RUN_COLUMNS,
            next_run=self.next_run(),
        )

    def models(self, request: Request) -> Response:
        config = self.config()
        return self.page(
            request,
            "models.html",
            scored=models_view.scored_outputs(
                self.engine, [f.output for f in available_outputs(rule_pairs(config))]
            ),
            cards=models_view.model_cards(self.engine, config.schedule.retrain_every_days),
            retrain_days=config.schedule.retrain_every_days,
            next_run=self.next_run(),
        )

    def segments(self, request: Request) -> Response:
        config = self.config()
        dists = fields_view.distributions(
            self.engine, config.fields.prefix, fields_view.pushed_outputs(config)
        )
        return self.page(
            request,
            "segments.html",
            audit=fields_view.latest_audit(self.engine),
            distributions=dists,
            coverage=fields_view.coverage(self.engine, config),
            uplift=fields_view.control_uplift(self.engine, config),
            control_share=config.segments.control_group.share,
        )

    def lookup_form(self, request: Request) -> Response:
        return self.page(request, "lookup.html")

    async def lookup(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return self.page(request, "lookup.html", 413, error="the form is too large")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        kind, key = form.get("kind", "profile"), form.get("key", "")
        try:
            key = lookup.check_key(key)
        except lookup.BadLookup as exc:
            return self.page(request, "lookup.html", 400, error=str(exc))
        base = request.scope.get("root_path", "")
        if kind == "profile":
            if not key.isdigit():
                return self.page(request, "lookup.html", 400, error="a profile id is a whole number")
            return RedirectResponse(f"{base}/customer/{int(key)}", 303)
        matches = lookup.find_by_vendor_id(self.engine, key)
        if len(matches) == 1:
            return RedirectResponse(f"{base}/customer/{matches[0][1]}", 303)
        status = 200 if matches else 404
        return self.page(request, "lookup.html", status, matches=matches, searched=True)

    def customer(self, request: Request) -> Response:
        profile_id = int(request.path_params["profile_id"])
        view = lookup.explain_customer(self.engine, self.config(), profile_id)
        if view is None:
            return self.page(request, "lookup.html", 404, error=f"no customer with profile id {profile_id}")
        return self.page(request, "customer.html", customer=view)


def create_app(
    engine: Engine,
    config: Config | Callable[[], Config],
    next_run: Callable[[], datetime | None] | None = None,
) -> Starlette:
    """The dashboard as an ASGI app; mount it (HealthServer.mount) to put it behind the server's token.

    `config` may be a callable so a daemon that reloads its config on SIGHUP shows the fresh one.
    """
    current = config if callable(config) else (lambda: config)
    board = Dashboard(engine, current, next_run)
    return Starlette(
        routes=[
            Route("/", board.overview),
            Route("/models", board.models),
            Route("/segments", board.segments),
            Route("/customer", board.lookup_form),
            Route("/customer", board.lookup, methods=["POST"]),
            Route("/customer/{profile_id:int}", board.customer),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
    )


def next_run_of(scheduler: Any, job_id: str) -> Callable[[], datetime | None]:
    """The next run time of an APScheduler job (None when it is not scheduled)."""

    def when() -> datetime | None:
        job = scheduler.get_job(job_id)
        return job.next_run_time if job is not None else None

    return when
