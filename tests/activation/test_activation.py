"""Activation against real PostgreSQL and a fake YClients partner server over HTTP."""

import hashlib
import json

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from portal.activation.activate import derive_api_key
from portal.app import create_app
from tests.helpers.landing import land, land_for_token
from tests.helpers.partner import (
    APP_ID,
    PARTNER_TOKEN,
    install_calls,
    owner_installs,
    partner_server,
    pending_status_route,
)
from tests.helpers.servers import free_port, serve


def connect_whatsapp(db, yclients_salon_id: int) -> None:
    """Arrange: the salon's WhatsApp is linked and was just confirmed with the gateway
    (`checked_at`: the page's watch of a connected link looks again only after its interval;
    the linking flow, the gateway's side included, has its own tests)."""
    db.execute(
        """INSERT INTO whatsapp_links (salon_id, session_name, status, phone, connected_at, checked_at)
           SELECT id, 'salon-' || yclients_salon_id, 'connected', '79160000000', now(), now()
           FROM salons WHERE yclients_salon_id = $1
           ON CONFLICT (salon_id) DO UPDATE SET status = 'connected', checked_at = now()""", yclients_salon_id)


@pytest.fixture
def partner():
    with partner_server() as (url, market):
        yield url, market


@pytest.fixture
def portal_env(partner):
    url, _ = partner
    return {"SANDBOX": "true", "YCLIENTS_PARTNER_TOKEN": PARTNER_TOKEN, "YCLIENTS_API_URL": url,
            "YCLIENTS_APP_ID": str(APP_ID), "YCLIENTS_TIMEOUT_S": "2"}


@pytest.fixture
def portal(make_settings, portal_env):
    settings = make_settings(**portal_env)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        yield c, settings


def ready_salon(client, settings, db, salon_id=4001, market=None) -> str:
    if market is not None:
        owner_installs(market, salon_id)
    token = land_for_token(client, settings.partner_token, salon_id=salon_id)
    connect_whatsapp(db, salon_id)
    return token


def test_success_follows_the_301_and_keeps_only_a_hash(portal, partner, db):
    client, settings = portal
    _, market = partner
    token = ready_salon(client, settings, db, market=partner[1])
    r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "salon_id": 4001, "redirect_url": f"{market.public_base}/installed/4001"}
    key = derive_api_key(settings.api_key_secret, 4001, 1)
    assert market.installed[4001]["api_key"] == key
    # No entity webhook receiver configured: none is sent (the lifecycle endpoint never is).
    assert market.installed[4001]["webhook_urls"] == []
    assert install_calls(market) == 1 and ("GET", "/installed/4001") not in market.calls
    row = db.fetchrow("SELECT * FROM salons")
    assert row["integration_status"] == "active" and row["activated_at"] and row["install_generation"] == 1
    # Only the hash: no part of the key is stored (staff pages and the admin API read this row).
    assert row["api_key_hash"] == hashlib.sha256(key.encode()).hexdigest() and row["api_key_prefix"] is None
    dump = json.dumps([dict(r) for r in db.fetch("SELECT * FROM salons")], default=str) + json.dumps(
        [dict(r) for r in db.fetch("SELECT * FROM marketplace_events")], default=str)
    assert key not in dump
    event = db.fetchrow("SELECT payload FROM marketplace_events WHERE event_type = 'integration_activated'")
    assert json.loads(event["payload"]) == {"activation_mode": "transaction", "install_generation": 1}
    intent = db.fetchrow("SELECT * FROM activation_intents")
    assert (intent["install_generation"], intent["outcome"], intent["attempts"]) == (1, "active", 1)
    assert intent["finished_at"] and intent["api_key_hash"] == row["api_key_hash"]


def test_already_active_answers_without_a_partner_call(portal, partner, db):
    client, settings = portal
    _, market = partner
    token = ready_salon(client, settings, db, market=partner[1])
    client.post("/marketplace/activate", json={"token": token})
    again = client.post("/marketplace/activate", json={"token": token})
    assert again.status_code == 200 and again.json()["already_active"] is True
    assert install_calls(market) == 1


def test_whatsapp_not_connected_is_409(portal, partner, db):
    client, settings = portal
    token = land_for_token(client, settings.partner_token, salon_id=4002)
    r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 409 and r.json()["code"] == "WHATSAPP_NOT_CONNECTED"
    assert install_calls(partner[1]) == 0
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"


def test_hours_after_landing_a_pending_install_still_activates(portal, partner, db):
    # No clock of ours: YClients still holds the install pending, so the callback goes out.
    client, settings = portal
    token = ready_salon(client, settings, db, market=partner[1])
    db.execute("UPDATE salons SET landed_at = now() - interval '5 hours'")
    r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 200, r.text
    assert install_calls(partner[1]) == 1 and partner[1].installed[4001]["status"] == "active"


def test_an_install_yclients_no_longer_holds_is_start_again_without_a_callback(portal, partner, db):
    client, settings = portal
    _, market = partner
    token = ready_salon(client, settings, db, market=market)
    market.uninstall(4001)  # the pending install ran out (or the owner removed the app)
    r = client.post("/marketplace/activate", json={"token": token}, headers={"Accept-Language": "en"})
    assert r.status_code == 410 and r.json()["code"] == "NOT_INSTALLED_AT_YCLIENTS"
    assert r.json()["marketplace_url"] and "marketplace" in r.json()["message"]
    assert install_calls(market) == 0 and ("GET", "/salon/4001/application/1") in market.calls
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"
    assert db.fetchval("SELECT count(*) FROM activation_intents") == 0  # nothing was about to be sent


def test_a_frozen_install_gets_the_frozen_answer_and_no_callback(portal, partner, db):
    client, settings = portal
    _, market = partner
    token = ready_salon(client, settings, db, market=market)
    market.install(4001, "someone-elses-key", [])  # grant → active elsewhere …
    market.freeze(4001)  # … and frozen for non-payment
    r = client.post("/marketplace/activate", json={"token": token}, headers={"Accept-Language": "en"})
    assert r.status_code == 409 and r.json()["code"] == "INSTALL_FROZEN"
    assert "subscription" in r.json()["message"]
    assert install_calls(market) == 0
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"


@pytest.mark.parametrize("fault", ["fail", "hang", "unauthorized"])
def test_an_unreadable_install_status_is_try_again_never_a_pass(make_settings, portal_env, partner, db, fault):
    _, market = partner
    settings = make_settings(**portal_env | {"YCLIENTS_TIMEOUT_S": "0.5"})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        token = ready_salon(client, settings, db, market=market)
        market.status_fault, market.hang_s = fault, 5  # after the landing, which read it too
        r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 503 and r.json()["code"] == "PARTNER_STATUS_UNAVAILABLE"
    assert int(r.headers["Retry-After"]) > 0 and r.json()["retry_after"] > 0
    assert install_calls(market) == 0 and market.pending(4001)
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"


def test_an_active_install_we_never_attempted_is_foreign_without_a_second_callback(portal, partner, db):
    client, settings = portal
    _, market = partner
    token = ready_salon(client, settings, db, market=market)
    market.install(4001, "someone-elses-key", [])
    r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 502 and r.json()["code"] == "PARTNER_ALREADY_INSTALLED"
    assert install_calls(market) == 0  # the platform refuses a callback after `active`: none was sent
    assert db.fetchval("SELECT outcome FROM activation_intents") == "foreign"
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'foreign_install_detected'") == 1


@pytest.mark.parametrize("answer", ["redirect", "json"])
def test_both_documented_successes_activate(portal, partner, db, answer):
    client, settings = portal
    _, market = partner
    market.install_answer = answer
    token = ready_salon(client, settings, db, market=market)
    r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 200, r.text
    # A 301 names YClients' page; a 200 leaves the next page to us (the owner's salon page).
    expected = f"{market.public_base}/installed/4001" if answer == "redirect" else f"{settings.base_url}/onboarding"
    assert r.json()["redirect_url"] == expected
    assert db.fetchval("SELECT integration_status FROM salons") == "active"
    assert db.fetchval("SELECT outcome FROM activation_intents") == "active"
    assert market.installed[4001]["status"] == "active" and install_calls(market) == 1


def test_the_browser_follows_a_200_success_to_our_own_page(portal, partner, db):
    client, settings = portal
    _, market = partner
    market.install_answer = "json"
    owner_installs(market, 4012)
    land(client, settings.partner_token, salon_id=4012)
    connect_whatsapp(db, 4012)
    no_js = client.post("/marketplace/activate", follow_redirects=False)
    assert no_js.status_code == 303 and no_js.headers["location"] == f"{settings.base_url}/onboarding"
    assert db.fetchval("SELECT integration_status FROM salons") == "active"


def test_activation_sends_the_operators_entity_webhooks_never_the_lifecycle_endpoint(
        make_settings, portal_env, partner, db):
    _, market = partner
    hooks = "https://assistant.example/yclients/records,https://crm.example/hook"
    settings = make_settings(**portal_env | {"YCLIENTS_ENTITY_WEBHOOK_URLS": hooks})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        token = ready_salon(client, settings, db, market=market)
        assert client.post("/marketplace/activate", json={"token": token}).status_code == 200
    assert market.installed[4001]["webhook_urls"] == hooks.split(",")


@pytest.mark.parametrize("body, status", [(b"{not json", 400), (b"[1]", 400), (b'{"token": 5}', 400),
                                          (b'{"token": "garbage"}', 401), (b"{}", 401)])
def test_bad_requests_write_nothing(portal, partner, db, body, status):
    client, settings = portal
    ready_salon(client, settings, db, market=partner[1])
    client.cookies.clear()
    r = client.post("/marketplace/activate", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"
    assert install_calls(partner[1]) == 0


@pytest.mark.parametrize("fault, status, code", [
    ("fail", 502, "PARTNER_SERVER"),
    ("unauthorized", 502, "PARTNER_AUTH"),
    ("already_installed", 502, "PARTNER_ALREADY_INSTALLED"),
])
def test_partner_failures_roll_back(portal, partner, db, fault, status, code):
    client, settings = portal
    _, market = partner
    token = ready_salon(client, settings, db, market=partner[1])
    market.fault = fault
    r = client.post("/marketplace/activate", json={"token": token})
    assert (r.status_code, r.json()["code"], r.json()["success"]) == (status, code, False)
    assert "Внутренняя ошибка" not in r.json()["message"]  # the partner's raw text stays out
    row = db.fetchrow("SELECT integration_status, api_key_hash, api_key_prefix, last_error FROM salons")
    assert row["integration_status"] == "activation_failed"
    assert row["api_key_hash"] is None and row["api_key_prefix"] is None and row["last_error"]
    payload = json.loads(db.fetchval("SELECT payload FROM marketplace_events WHERE event_type = 'activation_failed'"))
    assert payload["activation_mode"] == "transaction" and payload["error"] and payload["timestamp"]


def test_html_instead_of_a_redirect_is_a_failure(make_settings, db):
    html = Starlette(routes=[Route("/partner/callback/redirect", lambda r: HTMLResponse("<html>oops</html>"),
                                   methods=["POST"]), pending_status_route()])
    with serve(html) as url:
        # This "YClients" answers nothing else: the landing cannot ask it for the install status.
        settings = make_settings(SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=url,
                                 LANDING_REQUIRE_PENDING="false")
        with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
            token = ready_salon(client, settings, db)
            r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 502 and r.json()["code"] == "PARTNER_BAD_RESPONSE"
    assert db.fetchval("SELECT api_key_hash FROM salons") is None


def test_yclients_unreachable_is_try_again_and_writes_nothing(make_settings, db):
    settings = make_settings(SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN,
                             YCLIENTS_API_URL=f"http://127.0.0.1:{free_port()}", LANDING_REQUIRE_PENDING="false")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        token = ready_salon(client, settings, db)
        r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 503 and r.json()["code"] == "PARTNER_STATUS_UNAVAILABLE" and r.headers["Retry-After"]
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"


def test_partner_timeout_is_504_and_rolls_back(make_settings, portal_env, partner, db):
    _, market = partner
    settings = make_settings(**portal_env | {"YCLIENTS_TIMEOUT_S": "0.5"})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        token = ready_salon(client, settings, db, market=partner[1])
        market.fault, market.hang_s = "hang", 5  # after the landing, which asks YClients too
        r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 504 and r.json()["code"] == "PARTNER_TIMEOUT"
    row = db.fetchrow("SELECT integration_status, api_key_hash FROM salons")
    assert (row["integration_status"], row["api_key_hash"]) == ("activation_failed", None)


def test_event_log_failure_does_not_fail_activation(portal, partner, db):
    client, settings = portal
    token = ready_salon(client, settings, db, market=partner[1])
    db.execute("""CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN IF NEW.event_type = 'integration_activated' THEN RAISE EXCEPTION 'events broken'; END IF;
                  RETURN NEW; END $$;
                  CREATE TRIGGER refuse_event BEFORE INSERT ON marketplace_events
                  FOR EACH ROW EXECUTE FUNCTION refuse_event();""")
    r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 200 and r.json()["success"] is True
    assert db.fetchval("SELECT integration_status FROM salons") == "active"
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'integration_activated'") == 0


def test_serialization_failure_after_yclients_accepted_completes_without_a_second_callback(portal, partner, db):
    client, settings = portal
    _, market = partner
    token = ready_salon(client, settings, db, market=partner[1])
    # Real PostgreSQL raises a real 40001 the first time the salon would become active,
    # i.e. after YClients already accepted: the retry must send the very same key.
    # A sequence counts attempts: nextval survives the rollback of the failed transaction.
    db.execute("""CREATE SEQUENCE activation_attempts;
                  CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN IF NEW.integration_status = 'active' AND nextval('activation_attempts') = 1 THEN
                      RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure';
                  END IF; RETURN NEW; END $$;
                  CREATE TRIGGER fail_once BEFORE UPDATE ON salons FOR EACH ROW EXECUTE FUNCTION fail_once();""")
    r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 200, r.text
    # The retry reads YClients' status (`active`, and our intent unfinished): the install is
    # ours and completes without a second callback, which the platform would refuse.
    assert install_calls(market) == 1
    assert market.installed[4001]["api_key"] == derive_api_key(settings.api_key_secret, 4001, 1)
    assert db.fetchval("SELECT outcome FROM activation_intents") == "active"
    assert db.fetchval("SELECT integration_status FROM salons") == "active"
    assert db.fetchval("SELECT nextval('activation_attempts')") == 3


def test_browser_form_and_htmx_answers(portal, partner, db):
    client, settings = portal
    _, market = partner
    owner_installs(market, 4010)
    land(client, settings.partner_token, salon_id=4010)
    connect_whatsapp(db, 4010)
    page = client.get("/onboarding").text
    assert 'data-state="ready"' in page and 'data-testid="activate"' in page
    market.fault = "fail"
    htmx_fail = client.post("/marketplace/activate", headers={"HX-Request": "true"})
    assert htmx_fail.status_code == 200 and 'data-testid="activation-error"' in htmx_fail.text
    no_js_fail = client.post("/marketplace/activate")
    assert no_js_fail.status_code == 502 and 'data-testid="activation-error"' in no_js_fail.text
    market.fault = None
    no_js = client.post("/marketplace/activate", follow_redirects=False)
    assert no_js.status_code == 303 and no_js.headers["location"] == f"{market.public_base}/installed/4010"
    htmx_again = client.post("/marketplace/activate", headers={"HX-Request": "true"})
    assert 'data-state="done"' in htmx_again.text  # already active: the Done panel, no second call
    assert install_calls(market) == 3  # two failed tries and one success; "done" made no call


def test_a_cross_site_form_cannot_activate(portal, partner, db):
    client, settings = portal
    land(client, settings.partner_token, salon_id=4011)
    connect_whatsapp(db, 4011)
    r = client.post("/marketplace/activate", headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert install_calls(partner[1]) == 0 and db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"


def test_an_application_yclients_does_not_know_is_not_installed(make_settings, portal_env, partner, db):
    # Our application id is not the one YClients knows: its status says no install of it.
    # (The landing's own read of it would refuse the owner first: that check is off here.)
    settings = make_settings(**portal_env | {"YCLIENTS_APP_ID": str(APP_ID + 1), "LANDING_REQUIRE_PENDING": "false"})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        token = ready_salon(client, settings, db, market=partner[1])
        r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 410 and r.json()["code"] == "NOT_INSTALLED_AT_YCLIENTS"
    row = db.fetchrow("SELECT integration_status, api_key_hash FROM salons")
    assert (row["integration_status"], row["api_key_hash"]) == ("pending_whatsapp", None)
    assert install_calls(partner[1]) == 0 and partner[1].pending(4001)
