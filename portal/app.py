"""The application factory: `create_app(settings)` builds one complete portal.

Every package's route list is assembled here (`_routes`), in one place, so a reader sees the
whole surface: each package's handler module ends with its `routes()`. Everything with
a lifetime (pool, clients, breaker, gateway) is opened in the lifespan (`runtime.Runtime`)
and reaches handlers through their package's typed accessor (`platform.deps`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import Receive, Scope, Send

from portal.activation import recovery as activation_recovery
from portal.activation import routes as activation_routes
from portal.onboarding import routes as landing_routes
from portal.platform import routes as health
from portal.platform.database import OUTAGE_EXCEPTION_TYPES, is_outage
from portal.platform.deps import STATE_KEY
from portal.platform.resources import resource_path
from portal.platform.settings import Settings
from portal.runtime import Runtime, open_runtime
from portal.salon_pages import routes as onboarding_page
from portal.salon_pages import salon_routes as salon_page
from portal.sandbox import SandboxMarketplace
from portal.sandbox import routes as sandbox_pages
from portal.support import api_routes as admin_api
from portal.support import personal_data, staff
from portal.support import routes as dashboard
from portal.web import outage
from portal.web import routes as language
from portal.web.htmx import VaryOnHtmx
from portal.web.rendering import error_response, make_templates
from portal.web.request_log import RequestLog
from portal.web.security import BrowserProtection, frame_ancestors
from portal.web.transport import BodyReadTimeout, SecureCookiesOverHttps
from portal.whatsapp import api_routes as whatsapp_api
from portal.whatsapp import routes as whatsapp_widget
from portal.whatsapp import webhook_routes as whatsapp_webhook
from portal.yclients_webhooks import routes as yclients_webhook
from portal.yclients_webhooks import worker as webhook_worker

log = logging.getLogger(__name__)
STATIC_DIR = resource_path("static")
SESSION_COOKIE = "portal_session"


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error_response(request, 404, "NOT_FOUND", "error.not_found", next_step_key=None)
    if status == 413:
        return error_response(request, 413, "TOO_LARGE", "error.too_large", next_step_key=None)
    if status == 405:
        return error_response(request, 405, "METHOD_NOT_ALLOWED", "error.not_found", next_step_key=None)
    return error_response(request, status, "HTTP_ERROR", "error.internal", next_step_key=None)


async def _favicon(request: Request) -> Response:
    # Browsers ask for /favicon.ico whatever the pages link; the same icon, not a 404 in every log.
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})


async def _database_away(request: Request, exc: Exception) -> Response:
    """PostgreSQL restarting or failing over: 503 and "back in a moment", never a 500. Any
    other error of the same classes goes on to the 500 handler."""
    if not is_outage(exc):
        raise exc
    log.warning("database unavailable", extra={"path": request.url.path, "error": type(exc).__name__})
    return outage.unavailable(request)


async def _server_error(request: Request, exc: Exception) -> Response:
    # The owner gets a sentence and a reference; the trace goes to the log only.
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return error_response(request, 500, "INTERNAL_ERROR", "error.internal", next_step_key=None)


async def _body_timeout(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    # Connection: close, since the rest of the body may still be on its way.
    response = error_response(request, 408, "BODY_TIMEOUT", "error.body_timeout", next_step_key=None,
                              headers={"Connection": "close"})
    await response(scope, receive, send)


async def _cross_site(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    response = error_response(request, 403, "CROSS_SITE_REQUEST", "error.cross_site", next_step_key=None)
    await response(scope, receive, send)


def _lifespan(settings: Settings, templates: Jinja2Templates,
              market: SandboxMarketplace | None) -> Callable[[Starlette], AbstractAsyncContextManager[Any]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with open_runtime(settings, templates, market) as runtime:
            # Finishes stored webhook deliveries and gateway cleanups, also those a crash left;
            # then reconciles unfinished activations and erases expired personal data.
            async def personal_data_retention(runtime: Runtime) -> int:
                return await personal_data.erase_expired(runtime.pool, settings.personal_data_retention_days)

            stopping = asyncio.Event()
            worker = asyncio.create_task(
                webhook_worker.run_forever(runtime, settings.webhook_worker_interval_s, stopping,
                                           rounds=(activation_recovery.reconcile, personal_data_retention)))
            try:
                yield {STATE_KEY: runtime}
            finally:
                # Shutdown: the delivery in hand is finished (or handed back), not dropped.
                await webhook_worker.stop(worker, stopping)

    return lifespan


def _routes(market: SandboxMarketplace | None) -> list[BaseRoute]:
    """Every package's route list, and the app's own two (static files, the favicon)."""
    # The onboarding page composes the WhatsApp widget and the activation panel; their
    # handlers get the page's parts as functions instead of importing them back. An active
    # salon's own page (/salon) uses the same widget.
    return [
        # The widget's poll first: every owner's page sends one every 2 s, and Starlette tries
        # routes in order.
        *whatsapp_widget.routes(activation_panel=onboarding_page.activation_panel,
                                whole_page=salon_page.owner_page, page_parts=onboarding_page.progress),
        *landing_routes.routes(),
        *onboarding_page.routes(),
        *salon_page.routes(),
        *whatsapp_api.routes(),
        *activation_routes.routes(whole_page=onboarding_page.onboarding_page),
        *language.routes(),
        *health.routes(),
        *whatsapp_webhook.routes(),
        *yclients_webhook.routes(),
        *dashboard.routes(),
        *admin_api.routes(),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/favicon.ico", _favicon),
        *(sandbox_pages.routes(market) if market is not None else []),
    ]


def _middleware(settings: Settings) -> list[Middleware]:
    return [
        Middleware(RequestLog, instance_name=settings.instance_name),
        # Outside the refusals below, so their error pages are marked too.
        Middleware(VaryOnHtmx),
        Middleware(BodyReadTimeout, timeout_s=settings.body_read_timeout_s, refuse=_body_timeout),
        Middleware(SecureCookiesOverHttps),
        Middleware(BrowserProtection, base_origin=settings.base_origin, refuse=_cross_site,
                   credential_cookies=(SESSION_COOKIE, staff.COOKIE), frame_ancestors=frame_ancestors(settings)),
        # In YClients' app card the owner's cookie lives in a cross-site iframe: only
        # SameSite=None (hence Secure) is sent there, partitioned to the YClients top site.
        Middleware(SessionMiddleware, secret_key=settings.session_secret, session_cookie=SESSION_COOKIE,
                   max_age=settings.onboarding_token_ttl_s, same_site="none" if settings.embed_in_yclients else "lax",
                   https_only=settings.secure_cookies or settings.embed_in_yclients,
                   partitioned=settings.embed_in_yclients),
    ]


def create_app(settings: Settings) -> Starlette:
    market = None
    if settings.sandbox:
        market = SandboxMarketplace(f"{settings.base_url}/sandbox", partner_token=settings.partner_token or "",
                                    application_id=settings.app_id)
    return Starlette(
        routes=_routes(market), middleware=_middleware(settings),
        lifespan=_lifespan(settings, make_templates(), market),
        exception_handlers={HTTPException: _http_error, Exception: _server_error,
                            **dict.fromkeys(OUTAGE_EXCEPTION_TYPES, _database_away)},
        max_body_size=settings.max_body_bytes,
    )
