"""The sandbox's partner API: the YClients marketplace endpoints a partner calls, faked.

Owns the HTTP side of the stand-in — status codes, the `{"success", "data", "meta"}`
envelope, the 301 (or 200 `{"success": true}`, as `install_answer` says) that finishes a
pending install, fault injection — on top of the state in
`SandboxMarketplace`. The portal mounts it at `/sandbox/api` in demo mode; tests serve it
standalone as "YClients".

As YClients documents it: finishing an install for a salon that already has the app is
refused with 422 "Пользователь уже установил это приложение", whatever the api_key; the
install status answers only `connection_status` (status, created_at), `payments` and
`logs` — no API key, nor any part of one.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.sandbox.marketplace_state import ALREADY_INSTALLED_MESSAGE, SandboxMarketplace
from portal.web.request_input import BadInput, parse_id, parse_json

MAX_PAGE_COUNT = 1000
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

Handler = Callable[[SandboxMarketplace, Request], Awaitable[Response]]


def _envelope(
    status: int,
    data: Any = None,
    *,
    message: str | None = None,
    errors: dict[str, list[str]] | None = None,
    meta: dict[str, Any] | None = None,
) -> JSONResponse:
    meta = dict(meta or {})
    if message is not None:
        meta["message"] = message
    if errors is not None:
        meta["errors"] = errors
    return JSONResponse({"success": status < 400, "data": data, "meta": meta}, status_code=status)


def _route_path(request: Request) -> str:
    # Mounted at /sandbox/api the scope path keeps the prefix; record the partner's path.
    root = request.scope.get("root_path", "")
    path = request.url.path
    return path[len(root):] if root and path.startswith(root) else path


async def _hang(market: SandboxMarketplace, request: Request) -> bool:
    """Sleep like a stuck YClients; stop early once the caller gave up. True if it did."""
    await request.body()  # read first: polling for a disconnect must not eat the body
    deadline = time.monotonic() + market.hang_s
    while time.monotonic() < deadline:
        # Watching for the disconnect keeps a hung request from holding server shutdown.
        if await request.is_disconnected():
            return True
        await asyncio.sleep(0.05)
    return False


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def _partner_endpoint(market: SandboxMarketplace, handler: Handler, *,
                      status_read: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Record the call, inject the configured fault, check the partner token, then handle.
    The install status read has a fault of its own (`status_fault`): "YClients fails the
    callback" and "YClients cannot say the install's status" are different cases."""

    async def endpoint(request: Request) -> Response:
        market.record_call(request.method, _route_path(request))
        fault = market.status_fault if status_read else market.fault
        if fault == "fail":
            return _envelope(500, message="Внутренняя ошибка сервера")
        if fault == "unauthorized":
            return _envelope(401, message="Доступ запрещён: неверный токен партнёра")
        if fault == "already_installed":
            return _envelope(422, message=ALREADY_INSTALLED_MESSAGE)
        if fault == "hang" and await _hang(market, request):
            return Response(status_code=499)  # nobody is listening any more
        if not _bearer_matches(request, market.partner_token):
            return _envelope(401, message="Доступ запрещён: неверный токен партнёра")
        return await handler(market, request)

    return endpoint


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def _read_install(market: SandboxMarketplace, request: Request, *,
                        with_channels: bool) -> dict[str, Any] | Response:
    """Validate an install body as YClients would: the body, or the 422 to answer."""
    try:
        body = parse_json(await request.body())
    except BadInput:
        return _envelope(422, message="Тело запроса не является JSON")
    if not isinstance(body, dict):
        return _envelope(422, message="Тело запроса должно быть JSON-объектом")
    errors: dict[str, list[str]] = {}
    if not _is_int(body.get("salon_id")) or body["salon_id"] <= 0:
        errors["salon_id"] = ["Должно быть положительным целым числом"]
    if not _is_int(body.get("application_id")):
        errors["application_id"] = ["Должно быть целым числом"]
    elif body["application_id"] != market.application_id:
        errors["application_id"] = ["Приложение не найдено"]
    if not isinstance(body.get("api_key"), str) or not body["api_key"].strip():
        errors["api_key"] = ["Обязательное поле"]
    urls = body.get("webhook_urls")
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        errors["webhook_urls"] = ["Должно быть списком строк"]
    channels = body.get("channels")
    if with_channels and channels is not None and (
        not isinstance(channels, list) or not all(isinstance(c, str) for c in channels)
    ):
        errors["channels"] = ["Должно быть списком строк"]
    if errors:
        return _envelope(422, message="Переданы некорректные параметры", errors=errors)
    return body


def _install(market: SandboxMarketplace, body: dict[str, Any]) -> Response | None:
    """Finish the install; a 422 if the salon already has the app (any api_key). (What the
    platform answers for a salon where nobody pressed Install is not documented: the sandbox
    installs it, as the partner's own `POST /partner/callback` would.)"""
    market.callbacks.append(body["salon_id"])
    if body["salon_id"] in market.fail_next_callback:
        market.fail_next_callback.discard(body["salon_id"])
        return _envelope(500, message="Внутренняя ошибка сервера")
    if body["salon_id"] in market.installed and not market.pending(body["salon_id"]):
        return _envelope(422, message=ALREADY_INSTALLED_MESSAGE)
    market.install(body["salon_id"], body["api_key"], body["webhook_urls"])
    return None


async def _callback_redirect(market: SandboxMarketplace, request: Request) -> Response:
    body = await _read_install(market, request, with_channels=False)
    if isinstance(body, Response):
        return body
    if (refusal := _install(market, body)) is not None:
        return refusal
    if market.install_answer == "json":
        # The other documented success: 200 {"success": true}, the owner's next page is ours.
        return JSONResponse({"success": True})
    # Real YClients: 301 with a Location for the owner's browser and no JSON body.
    location = market.redirect_after_install(body["salon_id"])
    return Response(status_code=301, headers={"Location": location})


async def _callback(market: SandboxMarketplace, request: Request) -> Response:
    body = await _read_install(market, request, with_channels=True)
    if isinstance(body, Response):
        return body
    if (refusal := _install(market, body)) is not None:
        return refusal
    data = {"salon_id": body["salon_id"], "application_id": body["application_id"]}
    return _envelope(201, data)


def _not_installed() -> JSONResponse:
    return _envelope(404, message="Приложение не установлено в этом филиале")


async def _installation(market: SandboxMarketplace, request: Request) -> Response:
    salon_id = request.path_params["salon_id"]
    install = market.installed.get(salon_id)
    if request.path_params["application_id"] != market.application_id or install is None:
        return _not_installed()
    # Exactly the documented fields (the meta of a success is an empty list there).
    return JSONResponse({"success": True, "data": market.install_status(salon_id), "meta": []})


async def _uninstall(market: SandboxMarketplace, request: Request) -> Response:
    if request.path_params["application_id"] != market.application_id:
        return _not_installed()
    if not market.uninstall(request.path_params["salon_id"]):
        return _not_installed()
    return _envelope(200, None)


def _positive_int(raw: str | None, default: int) -> int | None:
    if raw is None:
        return default
    return parse_id(raw)


async def _salons(market: SandboxMarketplace, request: Request) -> Response:
    if request.path_params["application_id"] != market.application_id:
        return _envelope(404, message="Приложение не найдено")
    page = _positive_int(request.query_params.get("page"), 1)
    count = _positive_int(request.query_params.get("count"), 100)
    errors: dict[str, list[str]] = {}
    if page is None:
        errors["page"] = ["Должно быть положительным целым числом"]
    if count is None or count > MAX_PAGE_COUNT:
        errors["count"] = [f"Должно быть от 1 до {MAX_PAGE_COUNT}"]
    if errors or page is None or count is None:
        return _envelope(422, message="Переданы некорректные параметры", errors=errors)
    # Installed salons: an install still waiting for our callback is not one yet.
    salon_ids = sorted(sid for sid in market.installed if not market.pending(sid))
    chosen = salon_ids[(page - 1) * count : page * count]
    data = [
        {"salon_id": sid, "installed_at": market.installed[sid]["installed_at"]} for sid in chosen
    ]
    return _envelope(200, data, meta={"count": len(salon_ids)})


async def _unknown(market: SandboxMarketplace, request: Request) -> Response:
    return _envelope(404, message="Метод не найден")


def create_partner_api(market: SandboxMarketplace) -> Starlette:
    """The partner endpoints of YClients, answering from `market`."""

    def route(path: str, handler: Handler, methods: list[str], *, status_read: bool = False) -> Route:
        return Route(path, _partner_endpoint(market, handler, status_read=status_read), methods=methods)

    return Starlette(
        routes=[
            route("/partner/callback/redirect", _callback_redirect, ["POST"]),
            route("/partner/callback", _callback, ["POST"]),
            route("/salon/{salon_id:int}/application/{application_id:int}", _installation, ["GET"], status_read=True),
            route(
                "/salon/{salon_id:int}/application/{application_id:int}/uninstall",
                _uninstall,
                ["POST"],
            ),
            route("/application/{application_id:int}/salons", _salons, ["GET"]),
            # Anything else is still a partner call: recorded, faulted, and answered as JSON.
            route("/{path:path}", _unknown, _ALL_METHODS),
        ]
    )
