"""The fake YClients for tests: the sandbox's partner API, served on its own port."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from portal.sandbox.marketplace_state import SandboxMarketplace
from portal.sandbox.partner_api import create_partner_api
from tests.helpers.servers import free_port, serve

PARTNER_TOKEN = "partner-token-for-tests-0123456789"
APP_ID = 1


class AfterInstall:
    """Wraps the partner API: runs `hook()` after an install was accepted, before the
    answer leaves (to kill our database session mid-activation, or to slow the answer)."""

    def __init__(self, app: ASGIApp, hook):
        self.app, self.hook = app, hook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/partner/callback/redirect"):
            held = []

            async def hold(message):
                held.append(message)

            await self.app(scope, receive, hold)
            await self.hook()
            for message in held:
                await send(message)
            return
        await self.app(scope, receive, send)


# The fake YClients servers running now: pressing Install (tests/helpers/landing.py) happens
# "in the marketplace", i.e. in each of them, as the owner's click would at the real one.
SERVED: list[SandboxMarketplace] = []


@contextlib.contextmanager
def partner_server(hook=None, delay_s: float = 0.0):
    port = free_port()
    market = SandboxMarketplace(f"http://127.0.0.1:{port}/sandbox", partner_token=PARTNER_TOKEN,
                                application_id=APP_ID)
    SERVED.append(market)
    app = create_partner_api(market)
    if hook is not None or delay_s:
        async def pause():
            if delay_s:
                await asyncio.sleep(delay_s)
            if hook is not None:
                await hook()
        app = AfterInstall(app, pause)
    try:
        with serve(app, port=port) as url:
            yield url, market
    finally:
        SERVED.remove(market)


def owner_installs(market, *salon_ids: int) -> None:
    """The owner pressed Install in the marketplace: YClients holds each install `pending`
    (what precedes every landing on the platform)."""
    for salon_id in salon_ids:
        market.grant(salon_id)


def install_calls(market) -> int:
    return sum(1 for method, path in market.calls if method == "POST" and path.endswith("/partner/callback/redirect"))


def pending_status(salon_id: int, application_id: int) -> dict:
    """YClients' documented install status of an install waiting for our callback."""
    return {"success": True, "meta": [], "data": {
        "connection_status": {"status": "pending", "created_at": "2026-12-04 10:00:00"}, "payments": [],
        "logs": [{"changed_at": "2026-12-04 10:00:00", "status_from": "uninstalled", "status_to": "pending",
                  "source": "marketplace"}]}}


def pending_status_route() -> Route:
    """For a stand-in YClients that misbehaves on the callback only: its status says pending."""
    async def status(request):
        return JSONResponse(pending_status(request.path_params["salon_id"], request.path_params["app"]))
    return Route("/salon/{salon_id:int}/application/{app:int}", status)
