"""Who may open a salon (issue: the documented landing names the user, not the salon).

A fake YClients over HTTP answers the install status as the platform does (`pending` after
the owner pressed Install, `active` after the partner's callback); the landing is signed
exactly as documented (`user_data` = {user_id, name, email, phone}). Every refusal writes
nothing about the salon; staff get an alert naming both users.
"""

import asyncio
import json

import jwt
import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.onboarding import admission
from portal.onboarding.landing import Landing, MarketplaceUser
from portal.platform.database import open_database
from portal.salons.ids import YclientsSalonId
from tests.helpers.landing import land, landing_query, user
from tests.helpers.partner import APP_ID, PARTNER_TOKEN

OWNER, ATTACKER = user(601), user(502, name="Чужой", email="x@example.com", phone="79990000502")


@pytest.fixture
def env(partner_env):
    return partner_env | {"YCLIENTS_TIMEOUT_S": "1"}


@pytest.fixture
def portal(make_settings, env):
    with TestClient(create_app(make_settings(**env)), base_url="http://127.0.0.1:8000") as c:
        yield c


def _salon_state(db, salon_id):
    return dict(db.fetchrow("SELECT integration_status, owner_user_id, landed_at, updated_at FROM salons"
                            " WHERE yclients_salon_id = $1", salon_id))


def _alerts(db):
    return [(r["event_type"], json.loads(r["payload"])) for r in db.fetch(
        "SELECT event_type, payload FROM marketplace_events WHERE event_type LIKE 'landing_refused%'"
        " OR event_type = 'installed_elsewhere' ORDER BY id")]


def _onboarded(portal, db, market, salon_id, status="pending_whatsapp"):
    """The owner (user 601) landed for `salon_id`; the salon is in `status`, its WhatsApp linked."""
    assert land(portal, PARTNER_TOKEN, salon_id, market=market, user=OWNER).status_code == 303
    db.execute("UPDATE salons SET integration_status = $2 WHERE yclients_salon_id = $1", salon_id, status)
    db.execute("INSERT INTO whatsapp_links (salon_id, session_name, status, phone, connected_phone, connected_at)"
               " SELECT id, 'salon-' || yclients_salon_id, 'connected', '79160000601', '79160000601', now()"
               " FROM salons WHERE yclients_salon_id = $1", salon_id)
    if status == "active":
        market.install(salon_id, "key", [])
    portal.cookies.clear()


@pytest.mark.parametrize("status", ["active", "pending_whatsapp"])
def test_another_users_fresh_link_cannot_open_a_working_or_onboarding_salon(portal, partner, db, status):
    _, market = partner
    _onboarded(portal, db, market, 1001, status)
    # The attacker installed the app for their own salon 2002 and edits the unsigned salon_id.
    market.grant(2002)
    before = _salon_state(db, 1001)
    query = landing_query(PARTNER_TOKEN, 1001, user=ATTACKER)
    api = portal.get(f"/auth/yclients/redirect?{query}", headers={"Accept": "application/json"})
    assert (api.status_code, api.json()["code"]) == (403, "SALON_OTHER_USER")
    page = portal.get(f"/auth/yclients/redirect?{query}", follow_redirects=False)
    assert page.status_code == 403 and "set-cookie" not in page.headers
    assert "другой пользователь YClients" in page.text
    # Nothing about the salon changed, the attacker is not recorded as its user, the
    # owner's WhatsApp is untouched; staff see who tried, and whose salon it is.
    assert _salon_state(db, 1001) == before
    assert db.fetchval("SELECT count(*) FROM marketplace_users WHERE yclients_user_id = 502") == 0
    assert db.fetchval("SELECT status FROM whatsapp_links") == "connected"
    assert _alerts(db)[-1] == ("landing_refused_other_user", {"owner_user_id": 601, "user_id": 502})
    # Without a credential the attacker cannot act on the salon either.
    assert portal.post("/salon/relink", follow_redirects=False).status_code in (303, 401, 403)
    assert db.fetchval("SELECT status FROM whatsapp_links") == "connected"


def test_a_salon_without_the_app_is_not_created_by_someones_link(portal, partner, db):
    _, market = partner
    market.grant(2002)  # the attacker's own install; 3003 has no install at YClients
    r = portal.get(f"/auth/yclients/redirect?{landing_query(PARTNER_TOKEN, 3003, user=ATTACKER)}",
                   headers={"Accept": "application/json"})
    assert (r.status_code, r.json()["code"]) == (409, "NOT_INSTALLED")
    assert db.count("salons") == 0 and db.count("marketplace_users") == 0


def test_the_owner_returns_after_hours_and_reaches_the_salon_page(portal, partner, db):
    _, market = partner
    _onboarded(portal, db, market, 1001, "active")
    db.execute("UPDATE salons SET landed_at = now() - interval '9 hours', owner_bound_at = now() - interval '9 hours'")
    calls = len(market.calls)
    # The same documented link YClients opens again from the app's Settings.
    r = portal.get(f"/auth/yclients/redirect?{landing_query(PARTNER_TOKEN, 1001, user=OWNER)}", follow_redirects=False)
    assert r.status_code == 303
    # No status call was needed: the salon is bound to this user.
    assert len(market.calls) == calls
    page = portal.get("/onboarding")
    assert page.status_code == 200 and str(page.url).endswith("/salon")
    assert _salon_state(db, 1001)["integration_status"] == "active"


def test_the_same_users_second_salon_and_a_chain_onboard_without_staff(portal, partner, db):
    _, market = partner
    assert land(portal, PARTNER_TOKEN, 1001, market=market, user=OWNER).status_code == 303
    assert land(portal, PARTNER_TOKEN, 1002, market=market, user=OWNER).status_code == 303
    # A chain's landing names its branches as repeated salon_ids[]: each is checked and bound.
    market.grant(111)
    market.grant(222)
    query = landing_query(PARTNER_TOKEN, None, user=OWNER, **{"salon_ids[]": [111, 222]})
    assert portal.get(f"/auth/yclients/redirect?{query}", follow_redirects=False).status_code == 303
    owners = dict(db.fetch("SELECT yclients_salon_id, owner_user_id FROM salons"))
    assert owners == {1001: 601, 1002: 601, 111: 601, 222: 601}


def test_a_reinstall_with_the_very_same_link_onboards_without_staff(portal, partner, db):
    _, market = partner
    _onboarded(portal, db, market, 1001, "active")
    query = landing_query(PARTNER_TOKEN, 1001, user=OWNER)
    # Uninstalled at YClients (the webhook was processed), then installed again by the owner.
    market.uninstall(1001)
    db.execute("UPDATE salons SET integration_status = 'uninstalled'")
    market.grant(1001)
    r = portal.get(f"/auth/yclients/redirect?{query}", follow_redirects=False)
    assert r.status_code == 303
    assert _salon_state(db, 1001)["integration_status"] == "pending_whatsapp"


def test_a_reinstall_by_another_user_makes_them_the_owner(portal, partner, db):
    _, market = partner
    _onboarded(portal, db, market, 1001, "active")
    old_token = land_token = portal.get(
        f"/auth/yclients/redirect?{landing_query(PARTNER_TOKEN, 1001, user=OWNER)}",
        headers={"Accept": "application/json"}).json()["token"]
    market.uninstall(1001)
    db.execute("UPDATE salons SET integration_status = 'uninstalled'")
    market.grant(1001)
    assert land(portal, PARTNER_TOKEN, 1001, user=ATTACKER, install=False).status_code == 303
    assert _salon_state(db, 1001)["owner_user_id"] == 502
    # The former owner's credential no longer opens the salon.
    r = portal.get("/marketplace/api/status", headers={"Authorization": f"Bearer {old_token}"})
    assert r.status_code == 401
    assert land_token


@pytest.mark.parametrize("status, code", [("active", "INSTALLED_ELSEWHERE"), ("freezed", "INSTALL_FROZEN")])
def test_an_install_we_did_not_start_is_not_opened(portal, partner, db, status, code):
    _, market = partner
    market.install(4004, "someone-elses-key", [])
    if status != "active":
        market.set_status(4004, status)
    r = portal.get(f"/auth/yclients/redirect?{landing_query(PARTNER_TOKEN, 4004, user=OWNER)}",
                   headers={"Accept": "application/json"})
    assert (r.status_code, r.json()["code"]) == (409, code)
    assert db.count("salons") == 0
    alerts = _alerts(db)
    assert alerts == ([("installed_elsewhere", {"user_id": 601, "yclients_salon_id": 4004, "ours": False})]
                      if status == "active" else [])


@pytest.mark.parametrize("fault", ["fail", "hang"])
def test_yclients_unreachable_is_a_retry_screen_never_a_pass(portal, partner, db, fault):
    _, market = partner
    market.grant(1001)
    market.status_fault = fault  # YClients cannot say the install's status
    market.hang_s = 3
    r = portal.get(f"/auth/yclients/redirect?{landing_query(PARTNER_TOKEN, 1001, user=OWNER)}", follow_redirects=False)
    assert r.status_code == 503 and r.headers["retry-after"] == "30"
    assert "YClients" in r.text and "set-cookie" not in r.headers
    assert db.count("salons") == 0


def test_without_require_pending_the_first_user_binds_unconfirmed(make_settings, partner, env, db):
    _, market = partner
    settings = make_settings(**env, LANDING_REQUIRE_PENDING="false")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        assert land(c, PARTNER_TOKEN, 1001, install=False, user=OWNER).status_code == 303
        row = db.fetchrow("SELECT owner_user_id, install_confirmed FROM salons")
        assert (row["owner_user_id"], row["install_confirmed"]) == (601, False)
        assert market.calls == []  # YClients was not asked
        # The binding still holds: another user is refused.
        r = c.get(f"/auth/yclients/redirect?{landing_query(PARTNER_TOKEN, 1001, user=ATTACKER)}",
                  headers={"Accept": "application/json"})
        assert r.status_code == 403
        # A salon that works but has no recorded owner is never bound this way.
        db.execute("INSERT INTO salons (yclients_salon_id, landed_at, integration_status) VALUES (5005, now(), 'active')")
        r = c.get(f"/auth/yclients/redirect?{landing_query(PARTNER_TOKEN, 5005, user=ATTACKER)}",
                  headers={"Accept": "application/json"})
        assert (r.status_code, r.json()["code"]) == (409, "SALON_NEEDS_SUPPORT")
        assert db.fetchval("SELECT owner_user_id FROM salons WHERE yclients_salon_id = 5005") is None


class _PendingAfterBoth:
    """An install status source that answers `pending` only once both landings asked, so both
    pass the check before either binds: the binding itself must decide."""

    def __init__(self) -> None:
        self.asked = 0
        self.both = asyncio.Event()

    async def install_status(self, yclients_salon_id, application_id):
        self.asked += 1
        if self.asked == 2:
            self.both.set()
        await asyncio.wait_for(self.both.wait(), 5)
        return "pending"


async def test_two_users_racing_for_one_pending_salon_cannot_both_win(settings):
    rules = admission.AdmissionRules(application_id=1, require_pending=True)
    source = _PendingAfterBoth()

    def landing(user_id):
        return Landing((YclientsSalonId(7007),), MarketplaceUser(user_id, None, None, None, None, None), True)

    async with open_database(settings) as database:
        results = await asyncio.gather(admission.admit(database.pool, source, rules, landing(601)),
                                       admission.admit(database.pool, source, rules, landing(502)),
                                       return_exceptions=True)
        owner = await database.pool.fetchval("SELECT owner_user_id FROM salons WHERE yclients_salon_id = 7007")
    admitted = [r for r in results if isinstance(r, admission.Admitted)]
    refused = [r for r in results if isinstance(r, admission.Refused)]
    assert len(admitted) == 1 and len(refused) == 1, results
    assert refused[0].refusal.code == "SALON_OTHER_USER"
    assert owner in (601, 502) and admitted[0].salons[0].owner_user_id == owner


def _connect_lead(db, lead):
    db.execute("INSERT INTO whatsapp_links (salon_id, session_name, status, phone, connected_phone, connected_at)"
               " SELECT id, 'salon-' || yclients_salon_id, 'connected', '79160000601', '79160000601', now()"
               " FROM salons WHERE yclients_salon_id = $1", lead)


def _chain_token(portal, market, branches=(111, 222, 333)):
    for b in branches:
        market.grant(b)
    query = landing_query(PARTNER_TOKEN, None, user=OWNER, **{"salon_ids[]": list(branches)})
    r = portal.get(f"/auth/yclients/redirect?{query}", headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def test_a_chain_is_one_install_and_activation_finishes_every_branch_once(portal, partner, db):
    _, market = partner
    token = _chain_token(portal, market)
    # The owner walks one onboarding: the first branch's; the others point at it.
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "111"
    leads = dict(db.fetch("SELECT s.yclients_salon_id, l.yclients_salon_id FROM salons s"
                          " LEFT JOIN salons l ON l.id = s.install_lead_id"))
    assert leads == {111: None, 222: 111, 333: 111}
    # Before WhatsApp is linked nothing is sent for any branch.
    r = portal.post("/marketplace/activate", json={"token": token})
    assert (r.status_code, r.json()["code"]) == (409, "WHATSAPP_NOT_CONNECTED") and market.callbacks == []
    _connect_lead(db, 111)  # one number for the whole install: the lead's link
    r = portal.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 200, r.text
    assert [b["salon_id"] for b in r.json()["branches"]] == [111, 222, 333]
    assert sorted(market.callbacks) == [111, 222, 333]  # each branch exactly once
    assert {market.installed[b]["status"] for b in (111, 222, 333)} == {"active"}
    assert set(db.fetch("SELECT integration_status FROM salons")) == {("active",)}
    # A later press repeats nothing.
    again = portal.post("/marketplace/activate", json={"token": token})
    assert again.status_code == 200 and sorted(market.callbacks) == [111, 222, 333]
    # The owner's salon page (in English here) names every branch the number serves.
    portal.cookies.clear()
    assert land(portal, PARTNER_TOKEN, 111, market=market, user=OWNER).status_code == 303
    page = portal.get("/salon", headers={"Accept-Language": "en"})
    assert "Branches this WhatsApp number serves" in page.text
    assert all(f"(#{b}): connected" in page.text for b in (111, 222, 333))


def test_a_branch_that_fails_is_retried_without_repeating_the_others(portal, partner, db):
    _, market = partner
    token = _chain_token(portal, market, (111, 222))
    _connect_lead(db, 111)
    market.fail_next_callback.add(222)
    r = portal.post("/marketplace/activate", json={"token": token})
    body = r.json()
    assert (r.status_code, body["code"]) == (502, "PARTIAL_ACTIVATION")
    assert "1 из 2" in body["message"] and r.headers["retry-after"] == "5"
    assert [(b["salon_id"], b["success"]) for b in body["branches"]] == [(111, True), (222, False)]
    assert market.installed[111]["status"] == "active" and market.installed[222]["status"] == "pending"
    # The page (or the owner) tries again: only the branch still missing is sent.
    r = portal.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 200, r.text
    assert market.callbacks == [111, 222, 222]
    assert dict(db.fetch("SELECT yclients_salon_id, integration_status FROM salons")) == {111: "active", 222: "active"}
    # The browser's panel says which, and tries again by itself.
    market.fail_next_callback.add(222)
    db.execute("UPDATE salons SET integration_status = 'activation_failed' WHERE yclients_salon_id = 222")
    market.installed[222]["status"] = "pending"
    portal.cookies.clear()
    assert land(portal, PARTNER_TOKEN, 111, market=market, user=OWNER).status_code == 303
    panel = portal.post("/marketplace/activate", headers={"HX-Request": "true"})
    assert 'data-state="partial"' in panel.text and "Подключено филиалов: 1 из 2" in panel.text
    assert 'hx-trigger="load delay:5s"' in panel.text


def test_uninstalling_one_branch_keeps_the_shared_whatsapp_and_it_reinstalls_alone(portal, partner, db):
    _, market = partner
    token = _chain_token(portal, market, (111, 222))
    _connect_lead(db, 111)
    assert portal.post("/marketplace/activate", json={"token": token}).status_code == 200
    body = {"salon_id": 111, "application_id": APP_ID, "event": "uninstall", "partner_token": PARTNER_TOKEN}
    # The lead goes: its session still serves branch 222, so it is not queued for cleanup.
    assert portal.post("/webhook/yclients", json=body).status_code == 200
    assert db.fetchval("SELECT gateway_cleanup_pending_since FROM salons WHERE yclients_salon_id = 111") is None
    # Then the last branch goes: now the lead's session may be cleaned up.
    assert portal.post("/webhook/yclients", json=body | {"salon_id": 222}).status_code == 200
    assert db.fetchval("SELECT gateway_cleanup_pending_since FROM salons WHERE yclients_salon_id = 111") is not None
    # Branch 222 is installed again on its own: its own install, its own onboarding.
    market.uninstall(222)
    portal.cookies.clear()
    assert land(portal, PARTNER_TOKEN, 222, market=market, user=OWNER).status_code == 303
    row = db.fetchrow("SELECT integration_status, install_lead_id FROM salons WHERE yclients_salon_id = 222")
    assert (row["integration_status"], row["install_lead_id"]) == ("pending_whatsapp", None)
