"""The sandbox's pages: a stand-in for the YClients marketplace, for demos and tests.

"Install" sends the browser to our landing exactly as YClients would: `salon_id`, base64
`user_data` (URL-safe, unpadded, as real traffic) and its HMAC signature with the partner
token. Every page carries the sandbox banner (base.html shows it whenever the sandbox is on).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portal.onboarding.landing import encode_user_data, sign_user_data
from portal.sandbox.marketplace_state import SandboxMarketplace
from portal.web.rendering import error_response, render
from portal.whatsapp import SimulatedGateway


def signed_landing_query(market: SandboxMarketplace, salon: dict[str, Any]) -> str:
    user = {"id": salon["id"] * 10 + 1, "name": salon["owner_name"], "phone": salon["phone"],
            "email": salon["email"], "is_approved": True, "avatar": "", "salon_name": salon["name"]}
    raw = json.dumps(user, ensure_ascii=False).encode()
    return urlencode({"salon_id": salon["id"], "user_data": encode_user_data(raw),
                      "user_data_sign": sign_user_data(raw, market.partner_token)})


def _salon_or_404(request: Request) -> dict[str, Any] | None:
    try:
        salon_id = int(request.path_params["salon_id"])
    except ValueError:
        return None
    market: SandboxMarketplace = request.state.runtime.market
    return market.demo_salon(salon_id)


async def marketplace(request: Request) -> Response:
    market = request.state.runtime.market
    salons = [{"id": s["id"], "name": s["name"], "owner": s["owner_name"], "phone": s["phone"],
               "status": market.status_of(s["id"]), "removed": s["id"] in market.removed}
              for s in market.demo_salons]
    simulator = _simulator(request)
    return render(request, "sandbox/index.html", {
        "salons": salons, "simulator": simulator is not None,
        "fault": (simulator.fault or "none") if simulator else None,
        "partner_fault": market.fault or "none", "install_answer": market.install_answer,
        "result": result if (result := request.query_params.get("result")) in ("done", "refused") else None,
    })


async def install(request: Request) -> Response:
    """Install (or Install again after an uninstall): the owner grants the app, the install
    waits `pending` for the portal's callback, and the browser goes to the portal's landing."""
    salon = _salon_or_404(request)
    if salon is None:
        return error_response(request, 404, "NOT_FOUND", "error.not_found", next_step_key=None)
    request.state.runtime.market.grant(salon["id"])  # a no-op when the salon has the app
    query = signed_landing_query(request.state.runtime.market, salon)
    return RedirectResponse(f"/auth/yclients/redirect?{query}", status_code=303)


async def installed(request: Request) -> Response:
    return render(request, "sandbox/installed.html", {"salon_id": request.path_params["salon_id"]})


# --- the WhatsApp simulator's controls: the sandbox plays the salon's phone and the gateway.

def _simulator(request: Request) -> SimulatedGateway | None:
    gateway = request.state.runtime.gateway
    return gateway if isinstance(gateway, SimulatedGateway) else None


def _back(result: str) -> RedirectResponse:
    return RedirectResponse(f"/sandbox/?result={result}#simulator", status_code=303)


async def simulator_scan(request: Request) -> Response:
    from portal.whatsapp import GatewayError, session_name
    from portal.whatsapp.phones import PhoneError, normalise_phone

    simulator, salon = _simulator(request), _salon_or_404(request)
    if simulator is None or salon is None:
        return _back("refused")
    form = await request.form()
    try:
        phone = normalise_phone(str(form.get("phone") or salon["phone"]))
        code = str(form.get("code") or "").strip()
        if code:
            simulator.enter_pairing_code(session_name(salon["id"]), code)
        else:
            simulator.scan(session_name(salon["id"]), phone)
    except (PhoneError, GatewayError, ValueError):
        return _back("refused")
    return _back("done")


async def simulator_logout(request: Request) -> Response:
    """The phone unlinked the device (WhatsApp → Linked devices → Log out): the gateway's
    session is logged out. The simulator sends no webhooks; the portal notices on its next
    look at the gateway (the open page's poll)."""
    from portal.whatsapp import GatewayError, session_name

    simulator, salon = _simulator(request), _salon_or_404(request)
    if simulator is None or salon is None:
        return _back("refused")
    try:
        await simulator.logout(session_name(salon["id"]))
    except GatewayError:  # no such session, or the gateway is made to fail
        return _back("refused")
    return _back("done")


async def simulator_fault(request: Request) -> Response:
    simulator = _simulator(request)
    form = await request.form()
    mode = form.get("mode")
    if simulator is None or mode not in ("down", "slow", "none"):
        return _back("refused")
    simulator.set_fault("down" if mode == "down" else "slow" if mode == "slow" else None)
    return _back("done")


async def partner_fault(request: Request) -> Response:
    """Tell the sandbox's partner API how to answer the next installs."""
    form = await request.form()
    mode = form.get("mode")
    if mode not in ("none", "fail", "hang", "already_installed"):
        return _back("refused")
    request.state.runtime.market.fault = None if mode == "none" else mode
    return _back("done")


async def install_answer(request: Request) -> Response:
    """Which of the two documented successes the partner API gives a finished install."""
    form = await request.form()
    answer = form.get("answer")
    if answer not in ("redirect", "json"):
        return _back("refused")
    request.state.runtime.market.install_answer = answer
    return _back("done")


def _lifecycle_body(market: SandboxMarketplace, salon_id: int, event: str) -> dict[str, Any]:
    body: dict[str, Any] = {"salon_id": salon_id, "application_id": market.application_id, "event": event,
                            "partner_token": market.partner_token}
    if event == "payment":
        # Payment and period data; the names are those of YClients' POST /partner/payment
        # (the callback's own names are not in the public docs, and the portal requires none).
        now = datetime.now(UTC)
        body |= {"payment_sum": 990, "currency_iso": "RUB", "payment_date": now.strftime("%Y-%m-%d %H:%M:%S"),
                 "period_from": now.strftime("%Y-%m-%d 00:00:00"),
                 "period_to": (now + timedelta(days=30)).strftime("%Y-%m-%d 00:00:00")}
    return body


async def send_webhook(request: Request) -> Response:
    """The platform's lifecycle as YClients runs it: the install's state moves in the fake
    (uninstall: gone; freeze: active → freezed; payment: freezed → active), then a real,
    correctly authenticated lifecycle callback goes to the portal; `copies=2` sends it twice
    (a retry)."""
    import httpx

    salon = _salon_or_404(request)
    form = await request.form()
    event, copies = form.get("event"), form.get("copies", "1")
    if salon is None or not isinstance(event, str) or event not in ("uninstall", "freeze", "payment") \
            or copies not in ("1", "2"):
        return _back("refused")
    runtime = request.state.runtime
    market = runtime.market
    moved = {"uninstall": market.uninstall, "freeze": market.freeze, "payment": market.pay}[event](salon["id"])
    if not moved and event != "uninstall":  # a freeze needs an active install, a payment a frozen one
        return _back("refused")
    body = _lifecycle_body(market, salon["id"], event)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(int(copies)):
                response = await http.post(f"{runtime.settings.base_url}/webhook/yclients", json=body)
                if response.status_code != 200:
                    return _back("refused")
    except httpx.HTTPError:  # the portal is not reachable at its base URL (as in tests)
        return _back("refused")
    return _back("done")
