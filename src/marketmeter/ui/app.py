"""The dashboard's ASGI app, served under ``/_marketmeter/ui/`` by the server itself: the pages
(``ui.pages``), their form actions (``POST /do/<action>``), the login, and the stylesheet and
script (``/static/``, package data: no CDN, no build step).

In front of it stands the admin API's browser guard (``admin.browser_guard``) without its JSON
rule (the pages post forms): a foreign ``Host`` or ``Origin`` is refused before anything else;
forms carry a CSRF value; strict mode requires a session (``ui.session``).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from marketmeter.admin.browser_guard import BrowserGuard, HostPolicy
from marketmeter.operator.service import Operator
from marketmeter.ui.pages import Pages
from marketmeter.ui.session import UI_PATH, Sessions

__all__ = ["UI_PATH", "dashboard_app"]


def dashboard_app(
    operator: Operator, *, admin_token: str | None = None, hosts: HostPolicy | None = None
) -> Starlette:
    """The dashboard over ``operator``; with ``admin_token`` its pages require signing in."""
    pages = Pages(operator, Sessions(admin_token))
    guarded = pages.guarded
    table = [
        Route("/", guarded(pages.overview), methods=["GET"]),
        Route("/live", guarded(pages.overview_live), methods=["GET"]),
        Route("/usage", guarded(pages.usage), methods=["GET"]),
        Route("/usage.csv", guarded(pages.usage_csv), methods=["GET"]),
        Route("/journal", guarded(pages.journal), methods=["GET"]),
        Route("/journal/{number:int}", guarded(pages.journal_entry), methods=["GET"]),
        Route("/catalog", guarded(pages.catalog), methods=["GET"]),
        Route("/notifications", guarded(pages.notifications), methods=["GET"]),
        Route("/bench", guarded(pages.bench), methods=["GET"]),
        Route("/do/{action}", guarded(pages.act), methods=["POST"]),
        Route("/login", pages.login_page, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("marketmeter.ui", "static")]), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return HTMLResponse("<!doctype html><title>Not found</title><p>No such page.", 404)

    return Starlette(
        routes=[Mount(UI_PATH, routes=table)],
        middleware=[
            Middleware(BrowserGuard, hosts=hosts or HostPolicy.any(), json_writes=False),
        ],
        exception_handlers={404: not_found},
    )
