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
from starlette.routing import BaseRoute, Mount, Route

from portal.onboarding.landing import MAX_YCLIENTS_SALON_ID, encode_user_data, sign_user_data
from portal.sandbox.deps import market_of, sandbox_deps
from portal.sandbox.marketplace_state import SandboxMarketplace
from portal.sandbox.partner_api import create_partner_api
from portal.web.rendering import error_response, render
from portal.web.request_input import parse_id
from portal.whatsapp.gateways.simulator import SimulatedGateway

# A YClients user who is not the salon's owner: "Open as another user" lands as them.
OTHER_USER = {"user_id": 990001, "name": "Посторонний пользователь", "email": "other@example.com",
              "phone": "79000009999"}


def owner_user(salon: dict[str, Any]) -> dict[str, Any]:
    """The salon owner as YClients' `user_data` documents a user: exactly these four fields."""
    return {"user_id": salon["id"] * 10 + 1, "name": salon["owner_name"],
            "email": salon["email"], "phone": salon["phone"].lstrip("+")}


def signed_landing_query(market: SandboxMarketplace, salon: dict[str, Any],
                         user: dict[str, Any] | None = None, branches: list[int] | None = None) -> str:
    raw = json.dumps(user or owner_user(salon), ensure_ascii=False).encode()
    # A chain's install names every branch as a repeated salon_ids[], as YClients does.
    where: list[tuple[str, Any]] = ([("salon_ids[]", b) for b in branches] if branches
                                    else [("salon_id", salon["id"])])
    return urlencode([*where, ("user_data", encode_user_data(raw)),
                      ("user_data_sign", sign_user_data(raw, market.partner_token))])


def _salon_or_404(request: Request) -> dict[str, Any] | None:
    try:
        salon_id = int(request.path_params["salon_id"])
    except ValueError:
        return None
    market = market_of(request)
    return market.demo_salon(salon_id)


def _any_salon(request: Request) -> dict[str, Any] | None:
    """A demo salon, or any other positive YClients id (a salon the sandbox makes up)."""
    if (salon := _salon_or_404(request)) is not None:
        return salon
    salon_id = parse_id(request.path_params["salon_id"], maximum=MAX_YCLIENTS_SALON_ID)
    if salon_id is None or salon_id <= 0:
        return None
    return {"id": salon_id, "name": f"Салон #{salon_id}", "owner_name": "Владелец",
            "phone": "+79000000000", "email": f"owner{salon_id}@example.com"}


async def marketplace(request: Request) -> Response:
    market = market_of(request)
    salons = [{"id": s["id"], "name": s["name"], "owner": s["owner_name"], "phone": s["phone"],
               "status": market.status_of(s["id"]), "removed": s["id"] in market.removed}
              for s in market.demo_salons]
    simulator = _simulator(request)
    return render(request, "sandbox/index.html", {
        "salons": salons, "simulator": simulator is not None, "inbox": _phone_inbox(simulator, salons),
        "fault": (simulator.fault or "none") if simulator else None,
        "partner_fault": market.fault or "none", "install_answer": market.install_answer,
        "result": result if (result := request.query_params.get("result")) in ("done", "refused") else None,
    })


async def install(request: Request) -> Response:
    """The owner pressed Install in the marketplace: the install waits (`pending`) and YClients
    opens our registration URL with the owner's signed `user_data`. `?as=other` opens it as
    another YClients user instead (who pressed nothing), to show who may open a salon."""
    salon = _any_salon(request)
    if salon is None:
        return error_response(request, 404, "NOT_FOUND", "error.not_found", next_step_key=None)
    market = market_of(request)
    if request.query_params.get("as") == "other":
        query = signed_landing_query(market, salon, OTHER_USER)
    else:
        market.grant(salon["id"])
        query = signed_landing_query(market, salon)
    return RedirectResponse(f"/auth/yclients/redirect?{query}", status_code=303)


# The demo chain: two of the demo salons installed in one go by the first one's owner.
CHAIN = (500002, 500003)


async def install_chain(request: Request) -> Response:
    """The owner of a chain installs the app for two branches at once: both wait (`pending`),
    and YClients opens our registration URL once, naming both branches."""
    market = market_of(request)
    for branch in CHAIN:
        market.grant(branch)
    lead = market.demo_salon(CHAIN[0])
    assert lead is not None  # CHAIN names demo salons
    query = signed_landing_query(market, lead, branches=list(CHAIN))
    return RedirectResponse(f"/auth/yclients/redirect?{query}", status_code=303)


async def installed(request: Request) -> Response:
    return render(request, "sandbox/installed.html", {"salon_id": request.path_params["salon_id"]})


# --- the WhatsApp simulator's controls: the sandbox plays the salon's phone and the gateway.

def _simulator(request: Request) -> SimulatedGateway | None:
    gateway = sandbox_deps(request).gateway
    return gateway if isinstance(gateway, SimulatedGateway) else None


def _phone_inbox(simulator: SimulatedGateway | None, salons: list[dict[str, Any]]) -> dict[int, list[str]]:
    """What each salon's phone received from its own session (the portal's codes), newest first."""
    from portal.whatsapp.link import session_name

    if simulator is None:
        return {}
    return {s["id"]: [m.text for m in simulator.sent_texts(session_name(s["id"]))] for s in salons}


def _back(result: str) -> RedirectResponse:
    return RedirectResponse(f"/sandbox/?result={result}#simulator", status_code=303)


async def simulator_scan(request: Request) -> Response:
    from portal.whatsapp.link import GatewayError, session_name
    from portal.whatsapp.phones import PhoneError, parse_phone

    simulator, salon = _simulator(request), _salon_or_404(request)
    if simulator is None or salon is None:
        return _back("refused")
    form = await request.form()
    try:
        phone = parse_phone(str(form.get("phone") or salon["phone"]), "RU").digits  # the demo salons' phones
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
    from portal.whatsapp.link import GatewayError, session_name

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
    if not isinstance(mode, str) or mode not in ("none", "fail", "hang", "already_installed"):
        return _back("refused")
    market_of(request).fault = None if mode == "none" else mode
    return _back("done")


async def install_answer(request: Request) -> Response:
    """Which of the two documented successes the partner API gives a finished install."""
    form = await request.form()
    answer = form.get("answer")
    if not isinstance(answer, str) or answer not in ("redirect", "json"):
        return _back("refused")
    market_of(request).install_answer = answer
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
    market = market_of(request)
    moved = {"uninstall": market.uninstall, "freeze": market.freeze, "payment": market.pay}[event](salon["id"])
    if not moved and event != "uninstall":  # a freeze needs an active install, a payment a frozen one
        return _back("refused")
    body = _lifecycle_body(market, salon["id"], event)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(int(copies)):
                response = await http.post(f"{sandbox_deps(request).settings.base_url}/webhook/yclients", json=body)
                if response.status_code != 200:
                    return _back("refused")
    except httpx.HTTPError:  # the portal is not reachable at its base URL (as in tests)
        return _back("refused")
    return _back("done")


def routes(market: SandboxMarketplace) -> list[BaseRoute]:
    """The sandbox's pages, and YClients' partner API stand-in answering from `market`."""
    return [
        Route("/sandbox/", marketplace),
        Route("/sandbox/install/{salon_id}", install),
        Route("/sandbox/install-chain", install_chain),
        Route("/sandbox/installed/{salon_id}", installed),
        Route("/sandbox/whatsapp/{salon_id}/scan", simulator_scan, methods=["POST"]),
        Route("/sandbox/whatsapp/{salon_id}/logout", simulator_logout, methods=["POST"]),
        Route("/sandbox/whatsapp/fault", simulator_fault, methods=["POST"]),
        Route("/sandbox/partner/fault", partner_fault, methods=["POST"]),
        Route("/sandbox/partner/answer", install_answer, methods=["POST"]),
        Route("/sandbox/webhooks/{salon_id}", send_webhook, methods=["POST"]),
        Mount("/sandbox/api", app=create_partner_api(market)),
    ]
