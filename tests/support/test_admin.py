"""The support dashboard and the JSON admin API: who gets in, what they see, what they can do."""

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.onboarding import token as onboarding_token
from tests.helpers.landing import land, land_for_token
from tests.helpers.staff import API_KEY, PASSWORD, USERNAME, sign_in, staff_env

KEY = {"X-API-Key": API_KEY}


@pytest.fixture
def admin(make_settings):
    # Wrong keys count against the client's credential failures: these tests send dozens.
    settings = make_settings(**staff_env(), LOGIN_RATE_LIMIT="1000/minute")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        yield c, settings


def test_login_good_bad_and_logout(admin, db):
    client, _ = admin
    assert client.get("/admin", follow_redirects=False).headers["location"] == "/admin/login"
    for user, password in ((USERNAME, "wrong"), ("nobody", PASSWORD), ("", "")):
        bad = client.post("/admin/login", data={"username": user, "password": password})
        assert bad.status_code == 401 and "Wrong user name or password." in bad.text
    assert "portal_admin" not in client.cookies
    ok = client.post("/admin/login", data={"username": USERNAME, "password": PASSWORD}, follow_redirects=False)
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/admin" in cookie
    assert client.get("/admin").status_code == 200
    client.post("/admin/logout")
    assert client.get("/admin", follow_redirects=False).status_code == 303
    results = [r["result"] for r in db.fetch("SELECT result FROM admin_audit_log WHERE action = 'login' ORDER BY id")]
    assert results == ["refused", "refused", "refused", "ok"]


ADMIN_PAGES = ["/admin", "/admin/salons", "/admin/salons/500001", "/admin/system", "/admin/audit",
               "/admin/salons/500001/disconnect"]
ADMIN_API = [("GET", "/marketplace/admin/salons"), ("GET", "/marketplace/admin/salon/500001/status"),
             ("POST", "/marketplace/admin/salon/500001/disconnect"),
             ("GET", "/marketplace/admin/circuit-breaker/stats"),
             ("POST", "/marketplace/admin/circuit-breaker/reset"), ("GET", "/marketplace/admin/audit-log")]


def test_no_owner_credential_reaches_any_admin_route(admin, db):
    client, settings = admin
    token = land_for_token(client, settings.partner_token, salon_id=500001)
    land(client, settings.partner_token, salon_id=500001)  # the owner's session cookie too
    import jwt

    crafted = [
        token,
        jwt.encode({"sub": "support", "typ": "staff", "aud": "salon-portal:onboarding", "exp": 9999999999, "iat": 0},
                   settings.jwt_secret, algorithm="HS256"),
        jwt.encode({"sub": "1", "typ": "onboarding", "aud": "salon-portal:admin", "exp": 9999999999, "iat": 0,
                    "admin": True}, settings.jwt_secret, algorithm="HS256"),
        onboarding_token.issue(1, secret=settings.jwt_secret),
    ]
    for value in crafted:
        for path in ADMIN_PAGES:
            r = client.get(path, headers={"Authorization": f"Bearer {value}"}, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/admin/login", path
        for method, path in ADMIN_API:
            r = client.request(method, path, headers={"Authorization": f"Bearer {value}"}, json={"reason": "x"})
            assert r.status_code == 403 and r.json()["code"] == "WRONG_CREDENTIAL", path
            r = client.request(method, path, headers={"X-API-Key": value}, json={"reason": "x"})
            assert r.status_code == 401, path
    # The owner's session cookie alone: the pages send it to sign-in, the API says wrong kind.
    for method, path in ADMIN_API:
        assert client.request(method, path, json={"reason": "x"}).status_code == 403
    # A forged staff cookie made from the owner's session cookie value is no sign-in either.
    client.cookies.set("portal_admin", client.cookies.get("portal_session"), path="/admin")
    assert client.get("/admin", follow_redirects=False).status_code == 303
    assert db.count("admin_audit_log") == 0


def test_no_credential_is_401(admin):
    client, _ = admin
    for method, path in ADMIN_API:
        assert client.request(method, path).status_code == 401


def test_admin_api_routes_and_errors(admin, db):
    client, settings = admin
    land(client, settings.partner_token, salon_id=500001)
    land(client, settings.partner_token, salon_id=500002, user={"id": 2, "salon_name": "Барбершоп «Борода»"})
    listing = client.get("/marketplace/admin/salons", headers=KEY).json()
    assert listing["total"] == 2 and {s["yclients_salon_id"] for s in listing["salons"]} == {500001, 500002}
    assert client.get("/marketplace/admin/salons?q=Борода", headers=KEY).json()["total"] == 1
    by_id = client.get("/marketplace/admin/salons?q=500002", headers=KEY).json()
    assert by_id["salons"][0]["name"].startswith("Барбершоп")
    assert client.get("/marketplace/admin/salons?status=active", headers=KEY).json()["total"] == 0
    assert client.get("/marketplace/admin/salons?status=bogus", headers=KEY).status_code == 400
    assert client.get("/marketplace/admin/salons?page=0", headers=KEY).status_code == 400
    assert client.get("/marketplace/admin/salons?q=%25", headers=KEY).json()["total"] == 0  # % is text, not a wildcard

    status = client.get("/marketplace/admin/salon/500001/status", headers=KEY).json()
    assert status["integration_status"] == "pending_whatsapp" and status["api_key_set"] is False
    assert status["events"][0]["event_type"] == "landed" and "api_key_prefix" not in status
    assert client.get("/marketplace/admin/salon/999/status", headers=KEY).status_code == 404
    assert client.get("/marketplace/admin/salon/abc/status", headers=KEY).status_code == 400

    assert client.post("/marketplace/admin/salon/500001/disconnect", headers=KEY, content=b"{oops").status_code == 400
    assert client.post("/marketplace/admin/salon/500001/disconnect", headers=KEY, json={}).status_code == 422
    assert client.post("/marketplace/admin/salon/999/disconnect", headers=KEY, json={"reason": "x"}).status_code == 404
    r = client.post("/marketplace/admin/salon/500001/disconnect", headers=KEY, json={"reason": "owner asked"})
    assert r.status_code == 200 and r.json()["success"] is True
    assert db.fetchval("SELECT status FROM whatsapp_links") == "logged_out"
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'whatsapp_disconnected'") == 1

    audit = client.get("/marketplace/admin/audit-log", headers=KEY).json()["entries"]
    assert [(e["actor"], e["action"], e["target"], e["result"]) for e in audit] == [
        ("api-key", "disconnect", "salon:500001", "ok")]
    assert audit[0]["detail"] == {"reason": "owner asked"}


def test_breaker_reset_through_the_api_and_the_dashboard(make_settings, db):
    settings = make_settings(**staff_env(), QR_BREAKER_FAILURE_THRESHOLD="1")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        client.post("/sandbox/whatsapp/fault", data={"mode": "down"})
        token = land_for_token(client, settings.partner_token, salon_id=500001)
        client.post("/marketplace/api/qr", headers={"Authorization": f"Bearer {token}"})
        assert client.get("/marketplace/admin/circuit-breaker/stats", headers=KEY).json()["state"] == "open"
        r = client.post("/marketplace/admin/circuit-breaker/reset", headers=KEY)
        assert r.json()["stats"]["state"] == "closed"
        client.post("/marketplace/api/qr", headers={"Authorization": f"Bearer {token}"})  # opens again
        sign_in(client)
        page = client.get("/admin/system")
        assert 'data-testid="breaker-state" data-state="open">' in page.text
        client.post("/admin/system/breaker", data={"action": "reset"})
        assert 'data-testid="breaker-state" data-state="closed">' in client.get("/admin/system").text
    actions = [r["action"] for r in db.fetch(
        "SELECT action FROM admin_audit_log WHERE action LIKE 'breaker%' ORDER BY id")]
    assert actions == ["breaker_reset", "breaker_reset"]


def test_dashboard_pages_show_the_salon_and_its_timeline(admin, db):
    client, settings = admin
    land(client, settings.partner_token, salon_id=500001)
    client.post("/onboarding/whatsapp/start", headers={"HX-Request": "true"})
    db.execute("UPDATE whatsapp_links SET status = 'expired', qr = NULL")
    sign_in(client)
    overview = client.get("/admin")
    assert 'data-testid="attention-500001"' in overview.text and "QR code expired" in overview.text
    table = client.get("/admin/salons?attention=1", headers={"HX-Request": "true", "HX-Target": "salon-table"})
    assert table.text.lstrip().startswith("<div id=\"salon-table\"") and 'data-salon="500001"' in table.text
    page = client.get("/admin/salons/500001")
    assert 'data-event="qr_shown"' in page.text and 'data-event="landed"' in page.text
    assert client.get("/admin/salons/123456").status_code == 404
    confirm = client.get("/admin/salons/500001/disconnect")
    assert confirm.status_code == 200 and 'name="reason"' in confirm.text
    assert client.post("/admin/salons/500001/disconnect", data={"reason": ""}).status_code == 422
    done = client.post("/admin/salons/500001/disconnect", data={"reason": "test"}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get("/admin/audit").text.count("staff:support") >= 1
    retry = client.post("/admin/salons/500001/retry", follow_redirects=False)
    assert "Only+a+failed+activation" in retry.headers["location"]


def test_hostile_salon_names_are_escaped_for_staff(admin, db):
    client, settings = admin
    land(client, settings.partner_token, salon_id=77, user={"id": 1, "salon_name": "<img src=x onerror=alert(1)>"})
    sign_in(client)
    html = client.get("/admin/salons").text + client.get("/admin/salons/77").text
    assert "<img src=x" not in html and "&lt;img src=x" in html


def test_breaker_actions_ask_first_and_retry_is_offered_only_for_a_failed_activation(make_settings, db):
    settings = make_settings(**staff_env())
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000", headers={"Accept-Language": "en"}) as client:
        land_for_token(client, settings.partner_token, salon_id=500001)
        sign_in(client)
        for action, yes in (("reset", "Yes, reset the breaker"), ("force_open", "Yes, force the breaker open")):
            asked = client.get(f"/admin/system/breaker?action={action}")
            assert asked.status_code == 200 and yes in asked.text
            assert f'name="action" value="{action}"' in asked.text
        assert db.fetchval("SELECT count(*) FROM admin_audit_log WHERE action LIKE 'breaker%'") == 0
        assert 'data-testid="breaker-state" data-state="closed"' in client.get("/admin/system").text

        page = client.get("/admin/salons/500001").text
        assert 'data-testid="action-retry"' not in page  # pending, not failed: nothing to retry
        db.execute("UPDATE salons SET integration_status = 'activation_failed'")
        assert 'data-testid="action-retry"' in client.get("/admin/salons/500001").text
        confirm = client.get("/admin/salons/500001/disconnect").text
        assert "Yes, disconnect WhatsApp" in confirm  # the brand keeps its capitals


def test_needs_attention_is_a_code_the_dashboard_says_in_words_and_the_api_in_its_phrases(admin, db):
    """The SQL says `stuck` and the link's step; the API answers the phrase it always has,
    the dashboard the catalogue's words for both, in the page's language."""
    client, settings = admin
    land(client, settings.partner_token, salon_id=500001)
    client.post("/onboarding/whatsapp/start", headers={"HX-Request": "true"})
    db.execute("UPDATE whatsapp_links SET status = 'awaiting_scan', updated_at = now() - interval '11 minutes'")
    assert db.fetchval("SELECT attention FROM salon_overview") == "stuck"
    listing = client.get("/marketplace/admin/salons?attention=1", headers=KEY).json()
    assert [s["attention"] for s in listing["salons"]] == ["stuck in awaiting_scan"]
    assert client.get("/marketplace/admin/salon/500001/status", headers=KEY).json()["attention"] == (
        "stuck in awaiting_scan")
    sign_in(client)
    english = client.get("/admin/salons/500001", headers={"Accept-Language": "en"}).text
    russian = client.get("/admin/salons/500001", headers={"Accept-Language": "ru"}).text
    assert "Needs attention: stuck in awaiting scan" in english
    assert "завис: ждёт сканирования" in russian
    db.execute("UPDATE whatsapp_links SET status = 'logged_out'")
    assert client.get("/marketplace/admin/salon/500001/status", headers=KEY).json()["attention"] == (
        "WhatsApp logged out")
    assert client.get("/marketplace/admin/salons?attention=1", headers=KEY).json()["total"] == 1


def test_every_attention_code_the_view_returns_has_api_phrase_and_catalogue_words():
    """The codes live in three places (the view's CASE, the store's list, the API's phrases):
    they must name the same set, else a salon would show a bare code or break the API."""
    import re
    from pathlib import Path

    from portal.support.api_routes import ATTENTION_PHRASES
    from portal.support.store import ATTENTION_CODES

    view = (Path(__file__).resolve().parent.parent.parent / "migrations" / "019_store_views.sql").read_text()
    case = view[view.index("CREATE OR REPLACE VIEW salon_overview"):]
    assert set(re.findall(r"THEN '(\w+)'", case)) == set(ATTENTION_CODES)
    assert set(ATTENTION_PHRASES) | {"stuck"} == set(ATTENTION_CODES)
