"""A fake Evolution API (v2) server: the slice the portal uses, served for real, built from
Evolution's own source (`EvolutionAPI/evolution-api`):

- `src/api/routes/instance.router.ts`, `src/api/controllers/instance.controller.ts`: the
  instance calls, their status codes (create 201, the rest 200) and answers; `connect` and
  `restart` answering their own failures as HTTP 200 `{"error": true, "message"}`; `logout`
  of a closed instance 400; `connectionState` → `{instance: {instanceName, state}}`.
- `src/api/guards/instance.guard.ts`, `auth.guard.ts`: 404 for an unknown instance, 403 for a
  name in use, 401 without the `apikey` header's key; `src/main.ts`: the error body
  `{status, error, response: {message}}`.
- `whatsapp.baileys.service.ts` `connectionUpdate`: the QR object `{pairingCode, code, base64,
  count}`, `QRCODE_UPDATED` per new QR, the QR limit (`QRCODE_LIMIT`) ending in a
  `CONNECTION_UPDATE` with `state: "refused"` and the instance closed; `open` with `wuid`; a
  phone that removes the device closes it with `statusReason` 401.
- `webhook.controller.ts`: the envelope `{event, instance, data, destination, date_time,
  sender, server_url, apikey}` POSTed with the instance's webhook `headers`.
- `src/api/dto/sendMessage.dto.ts`: `POST /message/sendText/{instance}` `{number, text}`.

Owns `create_fake_evolution(api_key, clock=...) -> (app, state)`. Steer it through the state:

    state.scan(name, "79161234567")   # the phone scans: open, with that number
    state.remove_device(name)          # the phone unlinks the device: close, reason 401
    state.deliver()                    # POST the events raised so far; their answers
    state.clock.advance(60)            # QR rhythm: 60 s, then 20 s per QR, `qr_limit` QRs
    state.hang_s / state.fail_with     # every request waits / answers this status
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class FakeInstance:
    name: str
    token: str
    webhook: dict[str, Any] | None
    state: str = "close"  # open | connecting | close
    owner_jid: str | None = None
    qr_since: float | None = None
    qr_count: int = 0
    qr_code: str | None = None
    phone_number: str | None = None  # the number a connection began with: pairing codes
    pairing_code: str | None = None
    instance_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    sent: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0  # how many times a connection (a QR cycle) was begun

    def qr_object(self) -> dict[str, Any]:
        return {"pairingCode": self.pairing_code, "code": self.qr_code,
                "base64": f"data:image/png;base64,{self.qr_code}" if self.qr_code else None,
                "count": self.qr_count}


@dataclass
class FakeEvolutionState:
    api_key: str
    clock: Callable[[], float] = time.monotonic
    instances: dict[str, FakeInstance] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    outbox: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (instance, envelope)
    hang_s: float = 0.0
    fail_with: int | None = None
    qr_first_s: float = 60.0
    qr_next_s: float = 20.0
    qr_limit: int = 30  # Evolution's QRCODE_LIMIT default

    def paths(self) -> list[str]:
        return [f"{method} {path}" for method, path, _ in self.requests]

    # --- the phone's side -------------------------------------------------------------

    def scan(self, name: str, phone_digits: str) -> None:
        instance = self.instances[name]
        assert instance.state == "connecting", f"cannot scan: instance is {instance.state}"
        instance.state, instance.owner_jid = "open", f"{phone_digits}@s.whatsapp.net"
        instance.qr_since, instance.qr_code, instance.pairing_code = None, None, None
        self._event(instance, "connection.update", {"instance": name, "wuid": instance.owner_jid,
                                                    "profileName": "Salon", "profilePictureUrl": None,
                                                    "state": "open", "statusReason": 200})

    def remove_device(self, name: str) -> None:
        instance = self.instances[name]
        instance.state, instance.qr_since = "close", None
        self._event(instance, "connection.update", {"instance": name, "state": "close", "statusReason": 401})

    # --- the clock-driven QR cycle ------------------------------------------------------

    def connect(self, instance: FakeInstance, number: str | None) -> None:
        instance.state, instance.qr_since, instance.qr_count = "connecting", self.clock(), 0
        instance.phone_number, instance.connections = number, instance.connections + 1
        self._new_qr(instance)

    def _new_qr(self, instance: FakeInstance) -> None:
        instance.qr_count += 1
        instance.qr_code = f"2@{secrets.token_urlsafe(24)},fake,evolution,qr"
        instance.pairing_code = secrets.token_hex(4).upper() if instance.phone_number else None
        self._event(instance, "qrcode.updated", {"qrcode": {
            "instance": instance.name, "pairingCode": instance.pairing_code, "code": instance.qr_code,
            "base64": f"data:image/png;base64,{instance.qr_code}"}})

    def tick(self) -> None:
        now = self.clock()
        for instance in self.instances.values():
            if instance.state != "connecting" or instance.qr_since is None:
                continue
            elapsed = now - instance.qr_since
            due = 1 if elapsed < self.qr_first_s else 2 + int((elapsed - self.qr_first_s) // self.qr_next_s)
            while instance.qr_count < due and instance.state == "connecting":
                if instance.qr_count >= self.qr_limit:
                    # connectionUpdate: the limit reached, "refused", then no.connection closes it.
                    self._event(instance, "qrcode.updated", {"message": "QR code limit reached, please login again",
                                                             "statusCode": 500})
                    self._event(instance, "connection.update", {
                        "instance": instance.name, "state": "refused", "statusReason": 428,
                        "wuid": instance.owner_jid, "profileName": None, "profilePictureUrl": None})
                    instance.state, instance.qr_since, instance.qr_count = "close", None, 0
                    instance.qr_code = instance.pairing_code = None
                else:
                    self._new_qr(instance)

    # --- events -----------------------------------------------------------------------------

    def _event(self, instance: FakeInstance, event: str, data: dict[str, Any]) -> None:
        hook = instance.webhook
        if not hook or not hook.get("enabled") or not hook.get("url"):
            return
        if event.replace(".", "_").upper() not in (hook.get("events") or []):
            return
        self.outbox.append((instance.name, {
            "event": event, "instance": instance.name, "data": data, "destination": hook["url"],
            "date_time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "sender": instance.owner_jid, "server_url": "http://evolution.test", "apikey": instance.token}))

    def deliveries(self) -> list[tuple[str, bytes, dict[str, str]]]:
        """Take the events raised so far: (url, body, headers) each, as Evolution would POST them."""
        taken, self.outbox = self.outbox, []
        out = []
        for name, envelope in taken:
            hook = self.instances[name].webhook if name in self.instances else None
            headers = {"Content-Type": "application/json", **((hook or {}).get("headers") or {})}
            out.append((envelope["destination"], json.dumps(envelope).encode(), headers))
        return out

    def deliver(self) -> list[int]:
        """POST the events raised so far; the status codes they were answered with."""
        return [httpx.post(url, content=body, headers=headers, timeout=10).status_code
                for url, body, headers in self.deliveries()]


def _error(code: int, name: str, message: Any) -> JSONResponse:
    return JSONResponse({"status": code, "error": name, "response": {"message": message}}, status_code=code)


def create_fake_evolution(api_key: str, *,
                          clock: Callable[[], float] = time.monotonic) -> tuple[Starlette, FakeEvolutionState]:
    state = FakeEvolutionState(api_key, clock=clock)

    def instance_or_404(request: Request) -> FakeInstance | JSONResponse:
        name = request.path_params["name"]
        found = state.instances.get(name)
        return found if found is not None else _error(404, "Not Found", [f'The "{name}" instance does not exist'])

    async def create(request: Request) -> Response:
        body = await request.json()
        name = body.get("instanceName")
        if not isinstance(name, str) or not name:
            return _error(400, "Bad Request", ["instanceName is required"])
        if name in state.instances:
            return _error(403, "Forbidden", [f'This name "{name}" is already in use.'])
        if body.get("integration") not in ("WHATSAPP-BAILEYS", "WHATSAPP-BUSINESS", "EVOLUTION"):
            return _error(400, "Bad Request", ["Invalid integration"])
        hook = body.get("webhook")
        webhook = None if not isinstance(hook, dict) else {
            "enabled": True, "url": hook.get("url"), "headers": hook.get("headers") or {},
            "events": hook.get("events") or [], "byEvents": hook.get("byEvents"), "base64": hook.get("base64")}
        instance = state.instances[name] = FakeInstance(name, str(uuid.uuid4()).upper(), webhook)
        if body.get("qrcode"):
            state.connect(instance, body.get("number"))
        return JSONResponse({
            "instance": {"instanceName": name, "instanceId": instance.instance_id,
                         "integration": body.get("integration"), "webhookWaBusiness": None,
                         "accessTokenWaBusiness": "", "status": instance.state},
            "hash": instance.token,
            "webhook": {"webhookUrl": (hook or {}).get("url"), "webhookHeaders": (hook or {}).get("headers"),
                        "webhookByEvents": (hook or {}).get("byEvents"), "webhookBase64": (hook or {}).get("base64")},
            "qrcode": instance.qr_object() if body.get("qrcode") else None,
        }, status_code=201)

    def connection_state(instance: FakeInstance) -> dict[str, Any]:
        return {"instance": {"instanceName": instance.name, "state": instance.state}}

    async def get_state(request: Request) -> Response:
        found = instance_or_404(request)
        return found if isinstance(found, Response) else JSONResponse(connection_state(found))

    async def connect(request: Request) -> Response:
        found = instance_or_404(request)
        if isinstance(found, Response):
            return found
        if found.state == "open":
            return JSONResponse(connection_state(found))
        if found.state == "close":
            state.connect(found, request.query_params.get("number"))
        return JSONResponse(found.qr_object())

    async def restart(request: Request) -> Response:
        found = instance_or_404(request)
        if isinstance(found, Response):
            return found
        if found.state == "close":  # thrown and caught inside restartInstance: 200 with error
            return JSONResponse({"error": True, "message": f'The "{found.name}" instance is not connected'})
        if found.state == "connecting":
            state.connect(found, None)
            return JSONResponse(found.qr_object())
        return JSONResponse(connection_state(found))  # open: reconnects with its credentials

    async def logout(request: Request) -> Response:
        found = instance_or_404(request)
        if isinstance(found, Response):
            return found
        if found.state == "close":
            return _error(400, "Bad Request", [f'The "{found.name}" instance is not connected'])
        found.state, found.owner_jid, found.qr_since, found.qr_code = "close", None, None, None
        return JSONResponse({"status": "SUCCESS", "error": False, "response": {"message": "Instance logged out"}})

    async def delete(request: Request) -> Response:
        found = instance_or_404(request)
        if isinstance(found, Response):
            return found
        del state.instances[found.name]
        return JSONResponse({"status": "SUCCESS", "error": False, "response": {"message": "Instance deleted"}})

    async def fetch_instances(request: Request) -> Response:
        name = request.query_params.get("instanceName")
        if name and name not in state.instances:
            return _error(404, "Not Found", [f'Instance "{name}" not found'])
        rows = [i for i in state.instances.values() if not name or i.name == name]
        return JSONResponse([{"id": i.instance_id, "name": i.name, "connectionStatus": i.state,
                              "ownerJid": i.owner_jid, "profileName": None, "integration": "WHATSAPP-BAILEYS",
                              "number": i.phone_number, "token": i.token} for i in rows])

    async def send_text(request: Request) -> Response:
        found = instance_or_404(request)
        if isinstance(found, Response):
            return found
        body = await request.json()
        number, text = body.get("number"), body.get("text")
        if not isinstance(number, str) or not isinstance(text, str):
            return _error(400, "Bad Request", ["number and text are required"])
        if found.state != "open":
            return _error(400, "Bad Request", ["Connection Closed"])
        found.sent.append({"number": number, "text": text})
        return JSONResponse({"key": {"remoteJid": f"{number}@s.whatsapp.net", "fromMe": True,
                                     "id": secrets.token_hex(8).upper()},
                             "message": {"conversation": text}, "messageTimestamp": int(time.time()),
                             "status": "PENDING"}, status_code=201)

    async def controls(request: Request, call_next):
        body = await request.body()
        try:
            state.requests.append((request.method, request.url.path, json.loads(body) if body else None))
        except ValueError:
            state.requests.append((request.method, request.url.path, None))
        started = time.monotonic()
        while time.monotonic() - started < state.hang_s:
            await asyncio.sleep(0.02)
        if state.fail_with is not None:
            return _error(state.fail_with, "Internal Server Error", "injected failure: <html>stack trace…</html>")
        if request.headers.get("apikey") != state.api_key:
            return _error(401, "Unauthorized", "Unauthorized")
        state.tick()
        return await call_next(request)

    app = Starlette(
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=controls)],
        routes=[
            Route("/instance/create", create, methods=["POST"]),
            Route("/instance/connectionState/{name}", get_state, methods=["GET"]),
            Route("/instance/connect/{name}", connect, methods=["GET"]),
            Route("/instance/restart/{name}", restart, methods=["POST"]),
            Route("/instance/logout/{name}", logout, methods=["DELETE"]),
            Route("/instance/delete/{name}", delete, methods=["DELETE"]),
            Route("/instance/fetchInstances", fetch_instances, methods=["GET"]),
            Route("/message/sendText/{name}", send_text, methods=["POST"]),
        ],
    )
    return app, state
