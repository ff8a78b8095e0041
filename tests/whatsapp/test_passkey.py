"""WhatsApp's passkey step (WAHA 2026.7.1, GOWS): a state of its own, end to end.

The WAHA adapter against the fake WAHA over real HTTP (statuses and endpoints from
waha-docs how-to/sessions#passkey), then the owner's widget and the staff dashboard on a
real portal with real PostgreSQL.
"""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.whatsapp.gateways.waha import WahaGateway
from portal.whatsapp.link import GatewayConflict, LinkState, LinkStatus
from tests.helpers.gateways.fake_waha import create_fake_waha
from tests.helpers.landing import land, land_for_token
from tests.helpers.servers import serve
from tests.helpers.staff import sign_in, staff_env

HX = {"HX-Request": "true"}


@pytest.fixture
def fake():
    app, state = create_fake_waha("waha-key")
    state.status_on_start = "SCAN_QR_CODE"
    with serve(app) as url:
        yield url, state


async def test_waha_passkey_statuses_are_the_passkey_step_with_the_code_to_compare(fake):
    url, state = fake
    gateway = WahaGateway(url, "waha-key", timeout_s=2)
    try:
        await gateway.start_session("salon-1", metadata={})
        state.set_me("salon-1", "79160000001")
        state.ask_passkey("salon-1")
        assert await gateway.get_state("salon-1") == LinkState(LinkStatus.PASSKEY)
        with pytest.raises(GatewayConflict):  # nothing to confirm yet: WAHA answers 422
            await gateway.confirm_passkey("salon-1")
        state.ask_passkey("salon-1", code="4821")
        assert await gateway.get_state("salon-1") == LinkState(LinkStatus.PASSKEY, passkey_code="4821")
        await gateway.confirm_passkey("salon-1")
        assert (await gateway.get_state("salon-1")).status is LinkStatus.CONNECTED
        assert "POST /api/salon-1/auth/passkey/confirm" in state.paths()
    finally:
        await gateway.aclose()


def widget_state(html: str) -> str:
    found = re.search(r'data-state="([a-z_]+)"', html)
    return found.group(1) if found else "?"


def test_the_owner_sees_the_passkey_step_it_keeps_polling_never_restarts_and_completes(make_settings, fake, db):
    url, state = fake
    settings = make_settings(WHATSAPP_GATEWAY="waha", WAHA_URL=url, WAHA_API_KEY="waha-key",
                             WAHA_WEBHOOKS="off", WHATSAPP_REFRESH_S="0", **staff_env())
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=4401)
        assert widget_state(c.post("/onboarding/whatsapp/start", headers=HX).text) == "awaiting_scan"
        state.set_me("salon-4401", "79160004401")
        state.ask_passkey("salon-4401")
        shown = c.get("/onboarding/whatsapp/status", headers=HX).text
        assert widget_state(shown) == "passkey"
        assert 'hx-trigger="every' in shown  # it keeps polling
        assert "auto-retry" not in shown and 'hx-trigger="load' not in shown  # and never retries over it
        assert "WhatsApp просит подтвердить новое связанное устройство" in shown  # Russian by default
        # A start (a second tab, a stray click) does not restart the session under the owner.
        state.requests.clear()
        assert widget_state(c.post("/onboarding/whatsapp/start", headers=HX).text) == "passkey"
        assert not [p for p in state.paths() if p.endswith(("/start", "/restart", "/logout"))]
        # WhatsApp asks the owner to compare a code: it is shown with the button to confirm.
        state.ask_passkey("salon-4401", code="4821")
        shown = c.get("/onboarding/whatsapp/status", headers={**HX, "Accept-Language": "en"}).text
        assert 'data-testid="passkey-code">4821<' in shown and 'data-testid="passkey-confirm"' in shown
        token = land_for_token(c, settings.partner_token, salon_id=4401)  # the JSON API's Bearer token
        answer = c.get("/marketplace/api/status", headers={"Authorization": f"Bearer {token}"}).json()
        assert (answer["status"], answer["passkey_code"], answer["connected"]) == ("passkey", "4821", False)
        confirmed = c.post("/onboarding/whatsapp/passkey-confirm", headers=HX)
        assert widget_state(confirmed.text) == "connected"
        assert db.fetchval("SELECT status FROM whatsapp_links") == "connected"
        assert db.fetchval("SELECT passkey_code FROM whatsapp_links") is None
        events = db.fetch("SELECT event_type FROM marketplace_events ORDER BY id")
        types = [e["event_type"] for e in events]
        assert types.index("passkey_asked") < types.index("passkey_confirmed") < types.index("whatsapp_connected")
        # Staff: the funnel counts it, the list filters by it, the timeline names it.
        sign_in(c)
        overview = c.get("/admin").text
        assert "Passkey asked" in overview or "Ключ доступа" in overview
        timeline = c.get("/admin/salons/4401").text
        assert 'data-event="passkey_asked"' in timeline


def test_staff_filter_salons_by_their_whatsapp_status(make_settings, db):
    settings = make_settings(**staff_env())
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=4402)
        land(c, settings.partner_token, salon_id=4403)
        c.post("/onboarding/whatsapp/start", headers=HX)
        db.execute("UPDATE whatsapp_links SET status = 'passkey' WHERE session_name = 'salon-4403'")
        sign_in(c)
        listed = c.get("/admin/salons?link=passkey", headers={"Accept-Language": "en"}).text
        assert "4403" in listed and "4402" not in listed
        assert '<option value="passkey" selected>passkey step</option>' in listed
        bad = c.get("/admin/salons?link=nonsense")
        assert bad.status_code == 400 and "passkey" in bad.text
        api = c.get("/marketplace/admin/salons?link=passkey", headers={"X-API-Key": staff_env()["ADMIN_API_KEY"]})
        assert api.status_code == 200 and [s["yclients_salon_id"] for s in api.json()["salons"]] == [4403]


def test_the_simulator_has_the_passkey_step_for_demos_and_the_conformance_suite():
    import asyncio

    from portal.whatsapp.gateways.simulator import SimulatedGateway
    from tests.helpers.clock import FakeClock

    async def walk() -> None:
        clock = FakeClock()
        sim = SimulatedGateway(clock=clock, starting_s=0, linking_s=1)
        await sim.start_session("s", metadata={})
        sim.scan("s", "79160000000", passkey_code="1234")
        assert await sim.get_state("s") == LinkState(LinkStatus.PASSKEY, passkey_code="1234")
        await sim.confirm_passkey("s")
        assert (await sim.get_state("s")).status is LinkStatus.LINKING
        clock.advance(1)
        assert (await sim.get_state("s")).status is LinkStatus.CONNECTED
        with pytest.raises(GatewayConflict):
            await sim.confirm_passkey("s")

    asyncio.run(walk())
