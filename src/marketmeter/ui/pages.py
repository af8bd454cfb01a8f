"""The dashboard's pages, each one template over values the operator answers (no logic here
but choosing what to show): Overview, Usage, Journal, Catalog and agreements, Notifications and
Test bench, the login page, and the overview's live part that the page's script fetches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from marketmeter import __version__
from marketmeter.operator.aws_command import aws_cli_command
from marketmeter.operator.catalog import BUYERS, SELLERS
from marketmeter.operator.journal import JOURNAL_FILTERS
from marketmeter.operator.service import Operator
from marketmeter.operator.usage_summary import GROUP_KEYS, WINDOWS, summary_csv
from marketmeter.refusal import Refusal
from marketmeter.ui.charts import charts
from marketmeter.ui.forms import actions, read_form
from marketmeter.ui.session import (
    CSRF_FIELD,
    UI_PATH,
    Sessions,
    csrf_token,
    csrf_valid,
    set_csrf_cookie,
)

__all__ = ["PAGES", "Handler", "Pages"]

Handler = Callable[[Request], Awaitable[Response]]
# (path, title) of every page, in the navigation's order
PAGES = (
    ("/", "Overview"),
    ("/usage", "Usage"),
    ("/journal", "Journal"),
    ("/catalog", "Catalog and agreements"),
    ("/notifications", "Notifications"),
    ("/bench", "Test bench"),
)
_SUMMARY_FIELDS = ("product", "customer", "dimension", "from", "to", "window", "groupBy")
# a page's security headers: nothing from elsewhere, no framing, no inline script
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("marketmeter.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(ui=UI_PATH, pages=PAGES, version=__version__)
    return environment


def _filters(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The query's non-empty parameters among ``names``."""
    return {k: v for k, v in request.query_params.items() if k in names and v}


class Pages:
    """Every page handler, over one operator and the sessions of one admin token."""

    def __init__(self, operator: Operator, sessions: Sessions) -> None:
        self.operator = operator
        self.sessions = sessions
        self.templates = _environment()
        self.actions = actions(operator)

    # --- answering ----------------------------------------------------------------------

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        page = self.templates.get_template(template).render(
            request=request,
            path=request.url.path.removeprefix(UI_PATH) or "/",
            csrf=csrf_token(request),
            csrf_field=CSRF_FIELD,
            signed_in=self.sessions.required and self.sessions.signed_in(request),
            done=request.query_params.get("done"),
            error=request.query_params.get("error"),
            **values,
        )
        response = HTMLResponse(page, status, headers=_HEADERS)
        set_csrf_cookie(request, response)
        return response

    def guarded(self, handler: Handler) -> Handler:
        """``handler`` for signed-in browsers only (others go to the login page)."""

        async def page(request: Request) -> Response:
            if not self.sessions.signed_in(request):
                return RedirectResponse(f"{UI_PATH}/login", 303, headers=_HEADERS)
            try:
                return await handler(request)
            except Refusal as refused:
                return self.render(request, "refused.html", refused.status, refusal=refused)

        page.__name__ = handler.__name__
        return page

    # --- the pages ----------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        return self.render(request, "overview.html", view=await self.operator.overview.overview())

    async def overview_live(self, request: Request) -> Response:
        view = await self.operator.overview.overview()
        return self.render(request, "_overview_live.html", view=view)

    async def usage(self, request: Request) -> Response:
        filters = _filters(request, _SUMMARY_FIELDS)
        group_by = request.query_params.getlist("groupBy")
        if group_by:
            filters["groupBy"] = ",".join(group_by)
        summary = await self.operator.summaries.summary(filters)
        products = (await self.operator.catalog.products())["products"]
        return self.render(
            request,
            "usage.html",
            summary=summary,
            charts=charts(summary),
            filters=filters,
            products=products,
            windows=WINDOWS,
            group_keys=GROUP_KEYS,
            csv_query=urlencode(filters),
        )

    async def usage_csv(self, request: Request) -> Response:
        filters = _filters(request, _SUMMARY_FIELDS)
        summary = await self.operator.summaries.summary(filters)
        return Response(
            summary_csv(summary),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="usage-summary.csv"'},
        )

    async def journal(self, request: Request) -> Response:
        filters = _filters(request, JOURNAL_FILTERS)
        found = self.operator.bench.journal({"limit": "200", **filters})
        entries = list(reversed(found["entries"]))  # newest first
        return self.render(
            request, "journal.html", entries=entries, stats=found["stats"], filters=filters
        )

    async def journal_entry(self, request: Request) -> Response:
        number = request.path_params["number"]
        found = self.operator.bench.journal({"after": str(max(number - 1, 0)), "limit": "1"})
        entries = [e for e in found["entries"] if e["id"] == number]
        if not entries:
            raise Refusal.not_found("id", f"no journal entry {number} (a reset empties it)")
        entry = entries[0]
        endpoint = str(request.base_url).rstrip("/")
        return self.render(
            request, "journal_entry.html", entry=entry, command=aws_cli_command(entry, endpoint)
        )

    async def catalog(self, request: Request) -> Response:
        catalog = self.operator.catalog
        return self.render(
            request,
            "catalog.html",
            products=(await catalog.products())["products"],
            sellers=(await catalog.accounts(SELLERS))["sellers"],
            buyers=(await catalog.accounts(BUYERS))["buyers"],
            agreements=(await self.operator.lifecycle.agreements({}))["agreements"],
            tokens=(await self.operator.tokens.list({"limit": "50"}))["tokens"],
            keys=(await self.operator.keys.list())["keys"],
        )

    async def notifications(self, request: Request) -> Response:
        log = await self.operator.lifecycle.event_log({"limit": "200"})
        return self.render(request, "notifications.html", events=list(reversed(log["events"])))

    async def bench(self, request: Request) -> Response:
        bench = self.operator.bench
        return self.render(
            request,
            "bench.html",
            clock=self.operator.clock.state(),
            rules=bench.rules(),
            effects=bench.effects(),
            quota=bench.quota(),
            snapshots=(await bench.snapshots())["snapshots"],
        )

    # --- posting ------------------------------------------------------------------------

    async def act(self, request: Request) -> Response:
        """A form's action, then back to the page named by the form's ``back``."""
        form = await read_form(request)
        if not csrf_valid(request, form.get(CSRF_FIELD)):
            return self.render(
                request,
                "refused.html",
                403,
                refusal=Refusal("csrf", "the form is stale or not from this dashboard: reload"),
            )
        back = form.get("back", "/")
        if back not in {path for path, _ in PAGES}:
            back = "/"
        action = self.actions.get(request.path_params["action"])
        if action is None:
            raise Refusal.not_found("action", f"no action {request.path_params['action']!r}")
        try:
            outcome = {"done": await action(form)}
        except Refusal as refused:
            outcome = {"error": f"{refused.field}: {refused.message}"}
        return RedirectResponse(f"{UI_PATH}{back}?{urlencode(outcome)}", 303, headers=_HEADERS)

    # --- signing in and out ---------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if not self.sessions.required:
            return RedirectResponse(f"{UI_PATH}/", 303, headers=_HEADERS)
        return self.render(request, "login.html")

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        if not self.sessions.required:
            return RedirectResponse(f"{UI_PATH}/", 303, headers=_HEADERS)
        if not csrf_valid(request, form.get(CSRF_FIELD)):
            return self.render(request, "login.html", 403, failure="the form is stale: reload")
        if not self.sessions.token_matches(form.get("token", "")):
            return self.render(request, "login.html", 403, failure="wrong admin token")
        response = RedirectResponse(f"{UI_PATH}/", 303, headers=_HEADERS)
        self.sessions.sign_in(response)
        return response

    async def logout(self, request: Request) -> Response:
        form = await read_form(request)
        if not csrf_valid(request, form.get(CSRF_FIELD)):
            return RedirectResponse(f"{UI_PATH}/", 303, headers=_HEADERS)
        response = RedirectResponse(f"{UI_PATH}/login", 303, headers=_HEADERS)
        self.sessions.sign_out(response)
        return response
