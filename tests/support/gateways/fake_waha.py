"""A fake WAHA server: the documented slice of WAHA's HTTP API, served for real.

Owns `create_fake_waha(api_key) -> (app, state)`. Serve the app with
`tests.support.servers.serve` and steer it through the returned `FakeWahaState`:

    state.set_status(name, "SCAN_QR_CODE")    # move a session to any WAHA status
    state.set_me(name, "79161234567")          # attach (or with None, drop) an account
    state.hang_s = 5                           # every request waits 5 s before answering
    state.fail_with = 500                      # every request answers this status
    state.requests                             # (method, path, json body) seen so far
    state.status_on_start = "SCAN_QR_CODE"     # where create/start/restart put a session
    state.emit(name)                           # deliver session.status to the session's webhooks

Webhooks are delivered as WAHA documents them (waha-docs, how-to/events): the envelope `id`,
`timestamp`, `event`, `session`, `metadata`, `me`, `payload` {`name`, `status`, `statuses`},
`engine`, `environment`; headers `X-Webhook-Request-Id`, `X-Webhook-Timestamp`, the HMAC pair
when the webhook has `hmac.key`, and each configured `customHeaders` entry.

Sessions do not move by themselves: a test says when a QR appears or a scan happened.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class FakeSession:
    name: str
    status: str
    config: dict[str, Any]
    me: dict[str, str] | None = None
    qr: str = field(default_factory=lambda: f"2@{secrets.token_urlsafe(24)},fake,qr,text")

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "me": self.me, "config": self.config}


@dataclass
class FakeWahaState:
    api_key: str
    sessions: dict[str, FakeSession] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    hang_s: float = 0.0
    fail_with: int | None = None
    status_on_start: str = "STARTING"
    pairing_code: str = "ABCD-EFGH"
    pairing_requests: list[tuple[str, str]] = field(default_factory=list)

    def add_session(self, name: str, status: str = "STOPPED", **config: Any) -> FakeSession:
        self.sessions[name] = FakeSession(name, status, dict(config))
        return self.sessions[name]

    def set_status(self, name: str, status: str) -> None:
        self.sessions[name].status = status

    def set_me(self, name: str, phone_digits: str | None, push_name: str = "Salon") -> None:
        me = None if phone_digits is None else {"id": f"{phone_digits}@c.us", "pushName": push_name}
        self.sessions[name].me = me

    def webhook_delivery(self, name: str) -> list[tuple[str, bytes, dict[str, str]]]:
        """What WAHA would POST for the session's current status: (url, body, headers) each."""
        session = self.sessions[name]
        now_ms = int(time.time() * 1000)
        event = {
            "id": f"evt_{secrets.token_hex(13)}", "timestamp": now_ms, "event": "session.status",
            "session": name, "metadata": session.config.get("metadata") or {}, "me": session.me,
            "payload": {"name": name, "status": session.status,
                        "statuses": [{"status": session.status, "timestamp": now_ms}]},
            "engine": "WEBJS", "environment": {"version": "2026.6.1", "engine": "WEBJS", "tier": "CORE"},
        }
        body = json.dumps(event).encode()
        deliveries = []
        for hook in session.config.get("webhooks") or []:
            if "session.status" not in hook.get("events", []):
                continue
            headers = {"Content-Type": "application/json", "X-Webhook-Request-Id": secrets.token_hex(8),
                       "X-Webhook-Timestamp": str(now_ms)}
            key = (hook.get("hmac") or {}).get("key")
            if key:
                headers["X-Webhook-Hmac"] = hmac.new(key.encode(), body, hashlib.sha512).hexdigest()
                headers["X-Webhook-Hmac-Algorithm"] = "sha512"
            for extra in hook.get("customHeaders") or []:
                headers[extra["name"]] = extra["value"]
            deliveries.append((hook["url"], body, headers))
        return deliveries

    def emit(self, name: str) -> list[int]:
        """Deliver the session's status to its webhooks now; the status codes they answered."""
        answers = []
        for url, body, headers in self.webhook_delivery(name):
            answers.append(httpx.post(url, content=body, headers=headers, timeout=10).status_code)
        return answers

    def paths(self) -> list[str]:
        return [f"{method} {path}" for method, path, _ in self.requests]


def create_fake_waha(api_key: str) -> tuple[Starlette, FakeWahaState]:
    state = FakeWahaState(api_key)

    def error(code: int, message: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"error": message, **extra}, status_code=code)

    def session_or_404(request: Request) -> FakeSession | JSONResponse:
        session = state.sessions.get(request.path_params["name"])
        return session if session is not None else error(404, "Session not found")

    def ready_for_scan(session: FakeSession) -> JSONResponse | None:
        if session.status != "SCAN_QR_CODE":
            return error(422, "Session status is not as expected", status=session.status,
                         expected=["SCAN_QR_CODE"])
        return None

    async def create(request: Request) -> Response:
        body = await request.json()
        name = body.get("name")
        if not isinstance(name, str) or not name:
            return error(422, "name is required")
        if name in state.sessions:
            return error(422, f"Session '{name}' already exists")
        status = state.status_on_start if body.get("start", True) else "STOPPED"
        session = state.add_session(name, status, **(body.get("config") or {}))
        return JSONResponse(session.info(), status_code=201)

    async def get(request: Request) -> Response:
        session = session_or_404(request)
        return session if isinstance(session, Response) else JSONResponse(session.info())

    async def action(request: Request) -> Response:
        session = session_or_404(request)
        if isinstance(session, Response):
            return session
        match request.path_params["action"]:
            case "start":
                if session.status != "STOPPED":
                    return error(422, "Session is already started", status=session.status)
                session.status = state.status_on_start
            case "restart":
                session.status = state.status_on_start
            case "stop":
                session.status = "STOPPED"
            case "logout":
                session.me, session.status = None, "STOPPED"
            case _:
                return error(404, "Unknown action")
        return JSONResponse(session.info())

    async def delete(request: Request) -> Response:
        session = session_or_404(request)
        if isinstance(session, Response):
            return session
        del state.sessions[session.name]
        return Response(status_code=200)

    async def qr(request: Request) -> Response:
        session = session_or_404(request)
        if isinstance(session, Response):
            return session
        if request.query_params.get("format") != "raw":
            return error(400, "this fake serves format=raw only")
        return ready_for_scan(session) or JSONResponse({"value": session.qr})

    async def request_code(request: Request) -> Response:
        session = session_or_404(request)
        if isinstance(session, Response):
            return session
        phone = (await request.json()).get("phoneNumber")
        if not isinstance(phone, str) or not phone.isdigit():
            return error(400, "phoneNumber must be digits")
        if (wrong_state := ready_for_scan(session)) is not None:
            return wrong_state
        state.pairing_requests.append((session.name, phone))
        return JSONResponse({"code": state.pairing_code})

    async def controls(request: Request, call_next):
        body = await request.body()
        state.requests.append((request.method, request.url.path, _json_or_none(body)))
        # Hang in short steps so setting hang_s = 0 releases requests still waiting,
        # which lets the server shut down promptly after a timeout test.
        started = time.monotonic()
        while time.monotonic() - started < state.hang_s:
            await asyncio.sleep(0.02)
        if state.fail_with is not None:
            return error(state.fail_with, "injected failure: <html>stack trace…</html>")
        if request.headers.get("x-api-key") != state.api_key:
            return error(401, "Unauthorized")
        return await call_next(request)

    app = Starlette(
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=controls)],
        routes=[
            Route("/api/sessions", create, methods=["POST"]),
            Route("/api/sessions/{name}", get, methods=["GET"]),
            Route("/api/sessions/{name}", delete, methods=["DELETE"]),
            Route("/api/sessions/{name}/{action}", action, methods=["POST"]),
            Route("/api/{name}/auth/qr", qr, methods=["GET"]),
            Route("/api/{name}/auth/request-code", request_code, methods=["POST"]),
        ]
    )
    return app, state


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
