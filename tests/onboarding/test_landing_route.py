"""GET /auth/yclients/redirect over HTTP, against real PostgreSQL."""

import logging

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.onboarding import token as onboarding_token
from tests.helpers.landing import land, landing_query, press_install, user


def test_landing_upserts_salon_and_user_and_redirects_to_onboarding(client, settings, db):
    r = land(client, settings.partner_token, salon_id=4242)
    assert r.status_code == 303 and r.headers["location"] == "/onboarding"
    assert "token" not in r.headers["location"]
    salon = db.fetchrow("SELECT * FROM salons")
    # YClients' user_data names the user only: the salon's name is not in the landing.
    assert (salon["yclients_salon_id"], salon["name"], salon["integration_status"], salon["owner_user_id"]) == (
        4242, None, "pending_whatsapp", 7)
    user = db.fetchrow("SELECT * FROM marketplace_users")
    assert (user["yclients_user_id"], user["email"]) == (7, "anna@example.com")
    assert db.fetchval("SELECT event_type FROM marketplace_events") == "landed"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    page = client.get("/onboarding")
    assert page.status_code == 200 and "4242" in page.text


def test_json_landing_returns_a_valid_onboarding_token(client, settings):
    press_install(client, 77)
    r = client.get(f"/auth/yclients/redirect?{landing_query(settings.partner_token, 77)}",
                   headers={"Accept": "application/json"})
    assert r.status_code == 200
    body = r.json()
    claims = onboarding_token.verify(body["token"], secret=settings.jwt_secret)
    assert (claims.yclients_salon_id, claims.yclients_user_id) == (77, 7)
    assert 0 < body["expires_in"] <= 3600
    assert body["onboarding_url"].endswith("/onboarding")


BAD = [
    ({"salon_id": None}, 400, "SALON_ID_MISSING"),
    ({"salon_id": "abc"}, 400, "SALON_ID_INVALID"),
    ({"salon_id": "-5"}, 400, "SALON_ID_INVALID"),
    ({"salon_id": "0"}, 400, "SALON_ID_INVALID"),
    ({"salon_id": "99999999999999999999"}, 400, "SALON_ID_INVALID"),
    ({"salon_id": "1.5"}, 400, "SALON_ID_INVALID"),
    ({"user_data_sign": None}, 403, "SIGNATURE_MISSING"),
    ({"user_data_sign": "deadbeef" * 8}, 403, "SIGNATURE_INVALID"),
    ({"user_data": "%%%not-base64%%%"}, 400, "USER_DATA_CORRUPT"),
    ({"user_data": None, "user_data_sign": None}, 403, "SIGNATURE_MISSING"),
]


@pytest.mark.parametrize("override, status, code", BAD)
def test_bad_landing_input_is_refused_and_writes_nothing(client, settings, db, override, status, code):
    query = landing_query(settings.partner_token, **override)
    api = client.get(f"/auth/yclients/redirect?{query}", headers={"Accept": "application/json"})
    assert (api.status_code, api.json()["code"]) == (status, code)
    page = client.get(f"/auth/yclients/redirect?{query}", follow_redirects=False)
    assert page.status_code == status
    assert "text/html" in page.headers["content-type"] and "YClients" in page.text
    assert "set-cookie" not in page.headers
    assert db.count("salons") == 0 and db.count("marketplace_events") == 0


def test_signed_json_that_is_not_an_object_is_corrupt(client, settings, db):
    from portal.onboarding.landing import encode_user_data, sign_user_data

    raw = b"[1, 2, 3]"
    q = f"salon_id=5&user_data={encode_user_data(raw)}&user_data_sign={sign_user_data(raw, settings.partner_token)}"
    r = client.get(f"/auth/yclients/redirect?{q}", headers={"Accept": "application/json"})
    assert (r.status_code, r.json()["code"]) == (400, "USER_DATA_CORRUPT")
    assert db.count("salons") == 0


def test_hostile_user_data_is_escaped_on_the_page(client, settings):
    # `salon_name` is one of the extra fields some accounts are said to send: tolerated, escaped.
    land(client, settings.partner_token, salon_id=31, user=user(1, salon_name="<script>alert(1)</script>"))
    page = client.get("/onboarding")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_partner_token_not_configured_is_503(settings, db):
    app = create_app(settings.replace(partner_token=None))
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        r = c.get("/auth/yclients/redirect?salon_id=5", headers={"Accept": "application/json"})
    assert (r.status_code, r.json()["code"]) == (503, "NOT_CONFIGURED")
    assert db.count("salons") == 0


def test_unsigned_landing_allowed_by_operator_is_logged(make_settings, db, caplog):
    settings = make_settings(ALLOW_UNSIGNED_LANDING="true")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c, caplog.at_level(logging.WARNING):
        r = c.get("/auth/yclients/redirect?salon_id=55", follow_redirects=False)
    assert r.status_code == 303
    assert db.fetchval("SELECT yclients_salon_id FROM salons") == 55
    assert any("unsigned landing" in rec.getMessage() for rec in caplog.records)


def test_relanding_an_active_salon_keeps_it_active(client, settings, db):
    land(client, settings.partner_token, salon_id=8)
    db.execute("UPDATE salons SET integration_status = 'active', activated_at = now()")
    r = land(client, settings.partner_token, salon_id=8)
    assert r.status_code == 303
    row = db.fetchrow("SELECT integration_status, activated_at FROM salons")
    assert row["integration_status"] == "active" and row["activated_at"] is not None
    assert db.count("salons") == 1


def test_relanding_after_failure_or_uninstall_restarts_onboarding(client, settings, db):
    land(client, settings.partner_token, salon_id=9)
    # The owner comes back after a failed activation: the Activate button again.
    db.execute("UPDATE salons SET integration_status = 'activation_failed', landed_at = now() - interval '2 hours'")
    land(client, settings.partner_token, salon_id=9)
    row = db.fetchrow("SELECT integration_status, owner_user_id, landed_at > now() - interval '1 minute' AS fresh"
                      " FROM salons")
    assert (row["integration_status"], row["owner_user_id"], row["fresh"]) == ("pending_whatsapp", 7, True)
    # Uninstalled, then installed anew by another YClients user: the new install is theirs.
    db.execute("UPDATE salons SET integration_status = 'uninstalled'")
    land(client, settings.partner_token, salon_id=9, user=user(9))
    row = db.fetchrow("SELECT integration_status, owner_user_id FROM salons")
    assert (row["integration_status"], row["owner_user_id"]) == ("pending_whatsapp", 9)


def test_secrets_never_reach_the_logs(client, settings, caplog):
    with caplog.at_level(logging.DEBUG):
        land(client, settings.partner_token, salon_id=10)
        client.get("/onboarding")
        token = client.get(f"/auth/yclients/redirect?{landing_query(settings.partner_token, 10)}",  # the owner returns
                           headers={"Accept": "application/json"}).json()["token"]
    # The test client's own httpx logger prints its URLs; only the portal's lines count.
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records if not r.name.startswith("httpx"))
    assert "/auth/yclients/redirect" in text  # the requests were logged ...
    for secret in (settings.partner_token, "user_data", "79001234567", "anna@example.com", token):
        assert secret not in text  # ... without their query, tokens or personal data
