"""One structured log line per request, and a request id carried in and out.

The line holds the method, the path *without* its query (landing URLs carry signed user
data), the status, the duration and the request id: nothing an attacker could replay and
no personal data.

A client that goes away before its body arrived (Starlette's `ClientDisconnect`) is logged
as status 499, the client's doing, the way nginx logs it: no 500 and no traceback, since
nothing on our side failed. `INSTANCE_NAME`, when set, is echoed as `X-Portal-Instance` so
an operator (and a test) can tell which instance behind the proxy answered.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("portal.access")
REQUEST_ID_HEADER = "x-request-id"
INSTANCE_HEADER = b"x-portal-instance"
CLIENT_CLOSED = 499  # nginx's status for "the client closed the request"
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestLog:
    def __init__(self, app: ASGIApp, instance_name: str | None = None) -> None:
        self.app = app
        self.extra_headers = [(INSTANCE_HEADER, instance_name.encode())] if instance_name else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (REQUEST_ID_HEADER.encode(), request_id.encode()), *self.extra_headers]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # Raised by a body read after the client hung up: nobody is left to answer, and
            # re-raising would make Starlette and uvicorn log it as our error with a trace.
            status = CLIENT_CLOSED
        finally:
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "request_id": request_id,
                },
            )
