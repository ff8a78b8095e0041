"""The fake YClients for tests: the sandbox's partner API, served on its own port."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Receive, Scope, Send

from portal.sandbox.marketplace_state import SandboxMarketplace
from portal.sandbox.partner_api import create_partner_api
from tests.support.servers import free_port, serve

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


# The fake YClients servers running now: pressing Install (tests/support/landing.py) happens
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


def install_calls(market) -> int:
    return sum(1 for method, path in market.calls if method == "POST" and path.endswith("/partner/callback/redirect"))
