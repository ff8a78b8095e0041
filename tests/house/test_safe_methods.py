"""Only POST acts: GET and HEAD (which Starlette adds to every GET route) on any route of the
route table change nothing, neither in PostgreSQL nor at the WhatsApp gateway.

The routes are read from the app itself, so a route added later is covered without touching
this file. Each path is asked by every kind of caller (anonymous, the owner of an active,
connected salon, a signed-in staff member, the admin API key), with each path parameter
filled by the values that reach the handlers' actions (the salon's id, each staff action).
The gateway is a fake WAHA over HTTP: any request other than a GET there is an action.
"""

from __future__ import annotations

import itertools

import pytest
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from portal.app import create_app
from portal.support.routes import ACTIONS as STAFF_ACTIONS
from tests.helpers.gateways.fake_waha import create_fake_waha
from tests.helpers.landing import land
from tests.helpers.partner import APP_ID, PARTNER_TOKEN, install_calls, partner_server
from tests.helpers.servers import serve
from tests.helpers.staff import API_KEY, sign_in, staff_env

SALON = 500001
PHONE = "79000000001"
GENEROUS = {name: "100000/minute" for name in (
    "ADMIN_RATE_LIMIT", "LOGIN_RATE_LIMIT", "LOGIN_USER_RATE_LIMIT", "LOGIN_USER_CLIENT_RATE_LIMIT",
    "OWNER_RATE_LIMIT", "WEBHOOK_RATE_LIMIT", "LANDING_RATE_LIMIT")}
# The one GET that writes by design: YClients opens our registration URL with a GET, and the
# landing records who arrived. It acts on no salon's link and calls no gateway.
WRITES_BY_DESIGN = {"/auth/yclients/redirect"}
PARAM_VALUES = {"salon_id": [str(SALON)], "action": sorted(STAFF_ACTIONS)}


def paths(routes: list[BaseRoute], prefix: str = "") -> list[str]:
    """Every concrete path the route table answers, its parameters filled in every way."""
    found: list[str] = []
    for route in routes:
        if isinstance(route, Route):
            names = route.param_convertors.keys()
            for values in itertools.product(*(PARAM_VALUES.get(name, ["1"]) for name in names)):
                found.append(prefix + route.path_format.format(**dict(zip(names, values, strict=True))))
        elif isinstance(route, Mount) and route.routes:
            found += paths(list(route.routes), prefix + route.path)
    return sorted(set(found))


def snapshot(db) -> dict[str, object]:
    """What an action would change: the salons, their links and people, their trails, the
    audit log, the breaker."""
    return {
        "salons": [dict(r) for r in db.fetch("SELECT * FROM salons ORDER BY id")],
        "links": [dict(r) for r in db.fetch(
            "SELECT salon_id, status, phone, connected_phone, qr, pairing_code FROM whatsapp_links ORDER BY 1")],
        "users": [dict(r) for r in db.fetch("SELECT * FROM marketplace_users ORDER BY 1")],
        "events": db.count("marketplace_events"),
        "audit": db.count("admin_audit_log"),
        "deliveries": db.count("webhook_deliveries"),
        "breaker": [dict(r) for r in db.fetch("SELECT state, forced FROM circuit_breakers")],
    }


@pytest.fixture
def portal(make_settings):
    app, waha = create_fake_waha("waha-key")
    waha.status_on_start = "SCAN_QR_CODE"
    with serve(app) as waha_url, partner_server() as (partner_url, market):
        settings = make_settings(
            **staff_env(), **GENEROUS, SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN,
            YCLIENTS_API_URL=partner_url, YCLIENTS_APP_ID=str(APP_ID), WHATSAPP_GATEWAY="waha",
            WAHA_URL=waha_url, WAHA_API_KEY="waha-key", WAHA_WEBHOOK_HMAC_KEY="hook-key",
            WHATSAPP_REFRESH_S="0", WHATSAPP_SAFETY_POLL_S="3600")
        with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
            yield client, settings, waha, market


def active_and_connected(client, settings, waha, market) -> None:
    assert land(client, settings.partner_token, salon_id=SALON).status_code == 303
    assert 'data-state="awaiting_scan"' in client.post("/onboarding/whatsapp/start",
                                                       headers={"HX-Request": "true"}).text
    waha.set_me(f"salon-{SALON}", PHONE)
    waha.set_status(f"salon-{SALON}", "WORKING")
    for _, body, headers in waha.webhook_delivery(f"salon-{SALON}"):  # WAHA's event, delivered here
        assert client.post("/webhook/whatsapp", content=body, headers=headers).status_code == 200
    assert 'data-state="connected"' in client.get("/onboarding/whatsapp/status", headers={"HX-Request": "true"}).text
    assert client.post("/marketplace/activate", follow_redirects=False).status_code == 303
    assert install_calls(market) == 1


def test_get_and_head_on_every_route_act_on_nothing(portal, db):
    client, settings, waha, market = portal
    active_and_connected(client, settings, waha, market)
    sign_in(client)  # the staff cookie beside the owner's session: both kinds of caller at once
    routes = paths(list(client.app.routes))
    assert "/admin/salons/500001/erase" in routes and "/salon/relink" in routes  # the table was read
    before, calls_before = snapshot(db), len(waha.requests)
    for path, method, headers in itertools.product(
            [p for p in routes if p not in WRITES_BY_DESIGN], ("HEAD", "GET"), ({}, {"X-API-Key": API_KEY})):
        response = client.request(method, path, headers=headers, follow_redirects=False)
        assert response.status_code < 500, (method, path, response.status_code)
        acted = [f"{m} {p}" for m, p, _ in waha.requests[calls_before:] if m != "GET"]
        assert acted == [], (method, path, acted)
        assert snapshot(db) == before, (method, path)
    assert db.fetchval("SELECT status FROM whatsapp_links") == "connected"
    assert db.fetchval("SELECT name FROM marketplace_users") is not None  # not erased
