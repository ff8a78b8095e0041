"""What the connection under a request decides: how long its body may take to arrive, and
whether the cookies it gets are `Secure`.

uvicorn has no timeout for reading a request: a client that sends its headers and then a
byte of body now and then holds a connection (and a task) for as long as it likes. In
production nginx owns the header and body read timeouts (deploy/nginx.conf); this bounds
the body for an instance exposed without it. A body that does not arrive in time is
answered 408 and logged as the client's doing.

The scheme is the one uvicorn settled on: `https` when the connection is TLS, or when a
proxy listed in FORWARDED_ALLOW_IPS said so in X-Forwarded-Proto. A cookie set on such a
request is always `Secure`, whatever PORTAL_BASE_URL says.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class BodyTimeout(Exception):
    """The client did not send its whole body in time."""


class BodyReadTimeout:
    """ASGI middleware: the whole body must arrive within `timeout_s` of the app's first
    read; otherwise the read raises `BodyTimeout` and the client gets `refuse` (a 408)."""

    def __init__(self, app: ASGIApp, *, timeout_s: float, refuse: ASGIApp) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        body_done = False
        started = False

        async def bounded_receive() -> Message:
            nonlocal deadline, body_done
            if body_done:  # later reads wait for a disconnect: not the client's body any more
                return await receive()
            if deadline is None:
                deadline = loop.time() + self.timeout_s
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracked_send)
        except BodyTimeout:
            log.info("client too slow: request body not received in time",
                     extra={"path": scope["path"], "timeout_s": self.timeout_s})
            if not started:
                await self.refuse(scope, receive, send)


class SecureCookiesOverHttps:
    """ASGI middleware: every cookie set on an HTTPS request carries `Secure`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [(name, _secure(value) if name.lower() == b"set-cookie" else value)
                                      for name, value in message.get("headers", [])]
            await send(message)

        await self.app(scope, receive, send_secure)


def _secure(cookie: bytes) -> bytes:
    attributes = {part.strip().lower() for part in cookie.split(b";")[1:]}
    return cookie if b"secure" in attributes else cookie + b"; secure"
