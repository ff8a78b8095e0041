"""A fake WAHA server: the documented slice of WAHA's HTTP API, served for real.

Owns `create_fake_waha(api_key) -> (app, state)`. Serve the app with
`tests.helpers.servers.serve` and steer it through the returned `FakeWahaState`:

    state.set_status(name, "SCAN_QR_CODE")    # move a session to any WAHA status
    state.set_me(name, "79161234567")          # attach (or with None, drop) an account
    state.hang_s = 5                           # every request waits 5 s before answering
    state.fail_with = 500                      # every request answers this status
    state.requests                             # (method, path, json body) seen so far
    state.status_on_start = "SCAN_QR_CODE"     # where create/start/restart put a session
    state.emit(name)                           # deliver session.status to the session's webhooks
    state.sent_texts                           # (session, chatId, text) of each POST /api/sendText
    state.ask_passkey(name, code="1234")       # PASSKEY_CONFIRMATION_REQUIRED (no code: PASSKEY_REQUIRED)
    state.clock.advance(60)                    # with `create_fake_waha(key, clock=FakeClock())`

Webhooks are delivered as WAHA documents them (waha-docs, how-to/events): the envelope `id`,
`timestamp`, `event`, `session`, `metadata`, `me`, `payload` {`name`, `status`, `statuses`},
`engine`, `environment`; headers `X-Webhook-Request-Id`, `X-Webhook-Timestamp`, the HMAC pair
when the webhook has `hmac.key`, and each configured `customHeaders` entry.

Sessions do not move by themselves: a test says when a QR appears or a scan happened. Once
a session shows QRs, though, it follows WAHA's QR rhythm (waha#1799, from Baileys) on the
state's clock: the first QR lives 60 s, each next one 20 s, six in all, then the session is
`FAILED`. The clock is the tests' (`tests.helpers.clock.FakeClock`) where they pass one.

The passkey step follows waha-docs how-to/sessions#passkey: the statuses `PASSKEY_REQUIRED`
(event `payload.data` = the WebAuthn request options) and `PASSKEY_CONFIRMATION_REQUIRED`
(`payload.data` = {`code`}), `GET /api/{session}/auth/passkey/confirmation` → {`code`} (422
when nothing is pending) and `POST /api/{session}/auth/passkey/confirm` → 201, then `WORKING`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
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
    qr: str = field(default_factory=lambda: _qr_text())
    scan_since: float | None = None  # when the session began showing QRs (the rhythm's origin)
    qr_index: int = 0  # which of the cycle's QRs is shown
    passkey_code: str | None = None

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
    sent_texts: list[tuple[str, str, str]] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic
    qr_first_s: float = 60.0
    qr_next_s: float = 20.0
    qr_count: int = 6

    def add_session(self, name: str, status: str = "STOPPED", **config: Any) -> FakeSession:
        self.sessions[name] = FakeSession(name, "STOPPED", dict(config))
        self.set_status(name, status)
        return self.sessions[name]

    def set_status(self, name: str, status: str) -> None:
        session = self.sessions[name]
        if status == "SCAN_QR_CODE" and session.status != "SCAN_QR_CODE":  # a new cycle, a new first QR
            session.scan_since, session.qr_index, session.qr = self.clock(), 0, _qr_text()
        if status != "SCAN_QR_CODE":
            session.scan_since = None
        if not status.startswith("PASSKEY_"):
            session.passkey_code = None
        session.status = status

    def ask_passkey(self, name: str, code: str | None = None) -> None:
        """WhatsApp wants the new device confirmed: a passkey, or (with `code`) a code to compare."""
        self.set_status(name, "PASSKEY_CONFIRMATION_REQUIRED" if code else "PASSKEY_REQUIRED")
        self.sessions[name].passkey_code = code

    def tick(self) -> None:
        """Bring every QR-showing session up to the clock: rotate its QR, or fail it when the
        six QRs ran out (as WAHA does; a new QR needs a restart, or a logout + start)."""
        now = self.clock()
        for session in self.sessions.values():
            if session.status != "SCAN_QR_CODE" or session.scan_since is None:
                continue
            elapsed = now - session.scan_since
            index = 0 if elapsed < self.qr_first_s else 1 + int((elapsed - self.qr_first_s) // self.qr_next_s)
            if index >= self.qr_count:
                self.set_status(session.name, "FAILED")
            elif index != session.qr_index:
                session.qr_index, session.qr = index, _qr_text()

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
        if session.status == "PASSKEY_REQUIRED":
            event["payload"]["data"] = {"challenge": secrets.token_urlsafe(16), "timeout": 60000,
                                        "rpId": "web.whatsapp.com", "allowCredentials": [],
                                        "userVerification": "required"}
        elif session.status == "PASSKEY_CONFIRMATION_REQUIRED":
            event["payload"]["data"] = {"code": session.passkey_code}
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


def _qr_text() -> str:
    return f"2@{secrets.token_urlsafe(24)},fake,qr,text"


def create_fake_waha(api_key: str, *, clock: Callable[[], float] = time.monotonic) -> tuple[Starlette, FakeWahaState]:
    state = FakeWahaState(api_key, clock=clock)

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

    async def list_sessions(request: Request) -> Response:
        # waha-docs how-to/sessions "List sessions": running ones only, every one with `all=true`.
        every = request.query_params.get("all") == "true"
        return JSONResponse([s.info() for s in state.sessions.values() if every or s.status != "STOPPED"])

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
                state.set_status(session.name, state.status_on_start)
            case "restart":
                state.set_status(session.name, "STOPPED")  # a restart begins a new QR cycle
                state.set_status(session.name, state.status_on_start)
            case "stop":
                state.set_status(session.name, "STOPPED")
            case "logout":
                session.me = None
                state.set_status(session.name, "STOPPED")
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

    async def send_text(request: Request) -> Response:
        # WAHA's chatting API: the session must be WORKING (WAHA waits a moment for it, then
        # answers 422 with the status it found), the answer is the sent message (201).
        body = await request.json()
        name, chat_id, text = (body.get(k) if isinstance(body, dict) else None for k in ("session", "chatId", "text"))
        if not all(isinstance(v, str) and v for v in (name, chat_id, text)):
            return error(400, "session, chatId and text are required")
        session = state.sessions.get(name)
        if session is None:
            return error(404, "Session not found")
        if session.status != "WORKING":
            return error(422, "Session status is not as expected. Try again later or restart the session",
                         session=name, status=session.status, expected=["WORKING"])
        state.sent_texts.append((name, chat_id, text))
        own = (session.me or {}).get("id", chat_id)
        return JSONResponse({"id": f"true_{chat_id}_{secrets.token_hex(10).upper()}", "timestamp": int(time.time()),
                             "from": own, "fromMe": True, "to": chat_id, "body": text, "hasMedia": False,
                             "ack": 1}, status_code=201)
    async def passkey_confirmation(request: Request) -> Response:
        session = session_or_404(request)
        if isinstance(session, Response):
            return session
        if session.status != "PASSKEY_CONFIRMATION_REQUIRED" or session.passkey_code is None:
            return error(422, "No passkey confirmation is pending", status=session.status)
        return JSONResponse({"code": session.passkey_code})

    async def passkey_confirm(request: Request) -> Response:
        session = session_or_404(request)
        if isinstance(session, Response):
            return session
        if session.status != "PASSKEY_CONFIRMATION_REQUIRED":
            return error(422, "No passkey confirmation is pending", status=session.status)
        state.set_status(session.name, "WORKING")
        return Response(status_code=201)

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
        state.tick()
        return await call_next(request)

    app = Starlette(
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=controls)],
        routes=[
            Route("/api/sessions", create, methods=["POST"]),
            Route("/api/sessions", list_sessions, methods=["GET"]),
            Route("/api/sessions/{name}", get, methods=["GET"]),
            Route("/api/sessions/{name}", delete, methods=["DELETE"]),
            Route("/api/sessions/{name}/{action}", action, methods=["POST"]),
            Route("/api/{name}/auth/qr", qr, methods=["GET"]),
            Route("/api/{name}/auth/request-code", request_code, methods=["POST"]),
            Route("/api/sendText", send_text, methods=["POST"]),
            Route("/api/{name}/auth/passkey/confirmation", passkey_confirmation, methods=["GET"]),
            Route("/api/{name}/auth/passkey/confirm", passkey_confirm, methods=["POST"]),
        ]
    )
    return app, state


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
