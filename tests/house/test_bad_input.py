"""The security review's 500s from bad input, one by one: each is now a 4xx with nothing written.

Deep JSON nesting, NUL bytes, non-ASCII digits ('²'), integers beyond 64 bits, `1e400`,
`Infinity`, `NaN` and lone surrogates, in the places the review found them: admin paths,
`q=`, `page=`, the disconnect reason, webhook event names and signed `user_data` fields.
The fuzz test over every route (test_fuzz_routes.py) looks for the ones nobody listed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.onboarding.landing import encode_user_data, sign_user_data
from portal.web.request_input import MAX_JSON_DEPTH, BadInput, parse_id, parse_json
from tests.helpers.gateways.fake_waha import create_fake_waha
from tests.helpers.landing import land
from tests.helpers.portal_process import portal_process
from tests.helpers.servers import free_port, serve
from tests.helpers.staff import API_KEY, PASSWORD, USERNAME, sign_in, staff_env

KEY = {"X-API-Key": API_KEY}
JSON = {"Content-Type": "application/json"}
NESTED = b"[" * 3000
WRITTEN = ("salons", "marketplace_events", "marketplace_users", "webhook_deliveries",
           "whatsapp_links", "admin_audit_log", "activation_intents")
BAD_IDS = ["%00", "1%002", "%C2%B2", "%D9%A1%D9%A2", str(2**64), str(2**63), "9" * 40, "-1", "0", "%20%201"]


def counts(db) -> dict[str, int]:
    return {table: db.count(table) for table in WRITTEN}


@pytest.fixture
def portal(make_settings):
    settings = make_settings(**staff_env(), LOGIN_RATE_LIMIT="1000/minute", ADMIN_RATE_LIMIT="1000/minute",
                             LANDING_RATE_LIMIT="1000/minute", OWNER_RATE_LIMIT="1000/minute")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        yield client, settings


# --- the reader itself ---------------------------------------------------------------

def test_parse_json_refuses_what_would_have_been_a_500():
    for raw in (NESTED, b'{"a":' * 3000, b"1e400", b"-1e400", b'{"id": 1e400}', b"Infinity", b"NaN",
                b'{"id": -Infinity}', b'{"r": "\\ud800"}', b'{"\\udfff": 1}', b'{"r": "a\\u0000b"}',
                b'{"id": 9223372036854775808}', b'{"id": -9223372036854775809}', b"\xff\xfe", b"1" * 5000,
                b'{"r": "a\x00b"}', b""):
        with pytest.raises(BadInput):
            parse_json(raw)
    # A handler that checks the one field it uses may take the strings as they are.
    assert parse_json(b'{"reason": "a\\u0000"}', storable_strings=False) == {"reason": "a\x00"}
    deepest = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(deepest) == json.loads(deepest)
    with pytest.raises(BadInput):
        parse_json("[" + deepest + "]")
    # Brackets inside strings are text: they do not count as nesting.
    text = json.dumps({"reason": "[" * 5000 + '"\\{'})
    assert parse_json(text)["reason"].startswith("[[[")
    assert parse_json(b'{"id": 9223372036854775807, "x": 1.5, "n": "\\u00e9\\ud83d\\ude00"}') == {
        "id": 2**63 - 1, "x": 1.5, "n": "é😀"}


def test_parse_id_takes_ascii_digits_within_range_only():
    assert parse_id("500001") == 500001 and parse_id(str(2**63 - 1)) == 2**63 - 1
    assert parse_id("0", minimum=0) == 0 and parse_id("7", maximum=7) == 7
    for raw in ("²", "١٢", "𝟙", "\x00", "1\x00", str(2**63), str(2**64), "-1", "0", "+1", " 1", "1 ", "1_0", "",
                "9" * 40, "8", None, 5):
        assert parse_id(raw, maximum=7 if raw == "8" else 2**63 - 1) is None, raw


# --- deeply nested JSON ----------------------------------------------------------------

def test_deeply_nested_json_is_a_400_on_activation_and_the_yclients_webhook(portal, db):
    client, settings = portal
    land(client, settings.partner_token, salon_id=500001)
    before = counts(db)
    for body in (NESTED, b'{"token": ' + NESTED + b"}", b'{"token": "\\ud800"}', b'{"token": 1e400}'):
        r = client.post("/marketplace/activate", content=body, headers=JSON)
        assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST", body[:20]
    for body in (NESTED, b'{"partner_token": ' + b"[" * 2000 + b"}"):
        r = client.post("/webhook/yclients", content=body, headers=JSON)
        assert r.status_code == 400 and r.json()["code"] == "MALFORMED"
    r = client.post("/marketplace/admin/salon/500001/disconnect", content=NESTED, headers=KEY | JSON)
    assert r.status_code == 400 and r.json()["code"] == "BAD_JSON"
    assert counts(db) == before
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"


def test_deeply_nested_or_nul_json_on_the_gateway_webhook_is_a_400(make_settings, db):
    app, state = create_fake_waha("waha-key")
    with serve(app) as url:
        settings = make_settings(WHATSAPP_GATEWAY="waha", WAHA_URL=url, WAHA_API_KEY="waha-key",
                                 WAHA_WEBHOOK_HMAC_KEY="hook-key", WHATSAPP_REFRESH_S="3600")
        with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
            before = counts(db)
            for body in (NESTED, b'{"event": "session.status", "session": "salon-1\\u0000", '
                                 b'"payload": {"status": "WORKING"}}',
                         b'{"event": "session.status", "session": "\\ud800", "payload": {"status": "WORKING"}}',
                         b'{"event": "session.status", "session": "salon-1", "payload": {"status": NaN}}'):
                signed = {"X-Webhook-Hmac": hmac.new(b"hook-key", body, hashlib.sha512).hexdigest(),
                          "X-Webhook-Hmac-Algorithm": "sha512"}
                r = client.post("/webhook/whatsapp", content=body, headers=JSON | signed)
                assert r.status_code == 400 and r.json()["code"] == "MALFORMED", body[:40]
            assert counts(db) == before
            # nothing was asked of the gateway either (but the safety sweep's list of every session)
            assert [r for r in state.requests if r[:2] != ("GET", "/api/sessions")] == []


# --- ids in admin paths, q= and page= -------------------------------------------------

def test_bad_ids_in_admin_paths_are_400_or_404_with_nothing_written(portal, db):
    client, settings = portal
    land(client, settings.partner_token, salon_id=500001)
    client.cookies.clear()
    sign_in(client)
    before = counts(db)
    for raw in BAD_IDS:
        assert client.get(f"/admin/salons/{raw}").status_code == 404, raw
        assert client.post(f"/admin/salons/{raw}/disconnect", data={"reason": "test"}).status_code == 404, raw
        r = client.get(f"/marketplace/admin/salon/{raw}/status", headers=KEY)
        assert r.status_code == 400 and r.json()["code"] == "BAD_SALON_ID", raw
        r = client.post(f"/marketplace/admin/salon/{raw}/disconnect", json={"reason": "test"}, headers=KEY)
        assert r.status_code == 400 and r.json()["code"] == "BAD_SALON_ID", raw
    assert counts(db) == before


def test_q_and_page_with_nul_odd_digits_or_huge_numbers(portal, db):
    client, _ = portal
    sign_in(client)
    before = counts(db)
    for q in ("%00", "a%00b", "%ED%A0%80"):  # the last: a lone surrogate's UTF-8 bytes, read as U+FFFD
        expected = 200 if q == "%ED%A0%80" else 400
        assert client.get(f"/admin/salons?q={q}").status_code == expected, q
        assert client.get(f"/marketplace/admin/salons?q={q}", headers=KEY).status_code == expected, q
    for q in ("%C2%B2", "%D9%A1", str(2**64), str(2**63), "9" * 100, "-1"):  # searched as text: no match
        assert client.get(f"/admin/salons?q={q}").status_code == 200, q
        r = client.get(f"/marketplace/admin/salons?q={q}", headers=KEY)
        assert r.status_code == 200 and r.json()["total"] == 0, q
    for page in ("%00", "%C2%B2", "%D9%A1", str(2**64), str(2**63), "0", "-1", "100001"):
        assert client.get(f"/admin/salons?page={page}").status_code == 400, page
        r = client.get(f"/marketplace/admin/salons?page={page}", headers=KEY)
        assert r.status_code == 400 and r.json()["code"] == "BAD_FILTER", page
    for page in ("%00", "%C2%B2", str(2**63 // 100), str(2**64), "0"):
        r = client.get(f"/marketplace/admin/audit-log?page={page}", headers=KEY)
        assert r.status_code == 400 and r.json()["code"] == "BAD_PAGE", page
    assert client.get("/marketplace/admin/audit-log?page=1000000", headers=KEY).json()["entries"] == []
    assert counts(db) == before


# --- the disconnect reason ------------------------------------------------------------

def test_a_bad_disconnect_reason_is_refused_before_anything_happens(portal, db):
    client, settings = portal
    land(client, settings.partner_token, salon_id=500001)
    sign_in(client)  # its login is audited: counted before
    before = counts(db)
    for body in (b'{"reason": "a\\u0000b"}', b'{"reason": "\\ud800"}', b'{"reason": 1e400}',
                 b'{"reason": Infinity}', b'{"reason": NaN}', b'{"reason": ["x"]}', b'{"reason": "x\x00"}'):
        r = client.post("/marketplace/admin/salon/500001/disconnect", content=body, headers=KEY | JSON)
        assert r.status_code in (400, 422), body
    for reason in ("a\x00b", "\x00", ""):
        r = client.post("/admin/salons/500001/disconnect", data={"reason": reason})
        assert r.status_code == 422, reason
    assert counts(db) == before


# --- webhook event names ----------------------------------------------------------------

def test_yclients_webhook_fields_with_nul_surrogates_or_huge_numbers_are_refused(portal, db):
    client, settings = portal
    before = counts(db)
    good = {"partner_token": settings.partner_token, "application_id": settings.app_id, "salon_id": 500001}
    fields = json.dumps(good)[1:-1]
    for tail in ('"event": "unin\\u0000stall"', '"event": "\\ud800"', '"event": "x", "extra": "\\udfff"',
                 '"event": "uninstall", "salon_id": 1e400', '"event": "uninstall", "salon_id": Infinity',
                 '"event": "uninstall", "salon_id": 99999999999999999999999'):
        body = ("{" + fields + ", " + tail + "}").encode()
        r = client.post("/webhook/yclients", content=body, headers=JSON)
        assert r.status_code == 400 and r.json()["code"] == "MALFORMED", tail
    r = client.post("/webhook/yclients", content=b'{"partner_token": "\\ud800", "application_id": 1, '
                                                  b'"salon_id": 1, "event": "uninstall"}', headers=JSON)
    assert r.status_code == 400
    assert counts(db) == before


# --- signed user_data -----------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b'{"id": 1e400, "salon_id": 500002}', b'{"id": Infinity, "salon_id": 500002}',
    b'{"id": NaN, "salon_id": 500002}', b'{"id": 7, "name": "\\ud800", "salon_id": 500002}',
    b'{"id": 7, "name": "a\\u0000b", "salon_id": 500002}', b'{"id": 7, "salon_name": "\\udfff", "salon_id": 500002}',
    b'{"id": 7, "email": "a@b\\u0000", "salon_id": 500002}', b"[" * 3000, b'{"id": ' + b"[" * 3000 + b"}",
    b'{"id": "\xc2\xb2", "salon_id": 500002}', b'{"id": 99999999999999999999999, "salon_id": 500002}',
    b'{"id": 7, "salon_id": 1e400}', b'{"id": 7, "salon_ids": [500002, Infinity]}',
])
def test_signed_user_data_with_bad_values_is_a_400_with_nothing_written(portal, db, raw):
    client, settings = portal
    before = counts(db)
    query = urlencode({"salon_id": 500002, "user_data": encode_user_data(raw),
                       "user_data_sign": sign_user_data(raw, settings.partner_token)})
    r = client.get(f"/auth/yclients/redirect?{query}", headers={"Accept": "application/json"})
    assert r.status_code == 400, r.text
    assert counts(db) == before


def test_the_sandbox_webhook_button_with_the_portal_unreachable_at_its_base_url(portal, db):
    """The sandbox posts the webhook to the portal's own base URL; when nothing answers there
    (as under the TestClient), the page says 'refused' instead of a 500."""
    client, _ = portal
    r = client.post("/sandbox/webhooks/500001", data={"event": "uninstall"}, follow_redirects=False)
    assert r.status_code == 303 and "result=refused" in r.headers["location"]
    assert db.count("webhook_deliveries") == 0


def test_a_real_server_answers_every_finding_on_a_kept_alive_connection(database_url, tmp_path, db):
    """Over real HTTP (uvicorn, one keep-alive connection): every request of the review gets
    its 4xx, and the connection is never cut (httpx would raise on a dropped one)."""
    port = free_port()
    env = {"DATABASE_URL": database_url, "PORTAL_DATA_DIR": str(tmp_path / "data"), "SANDBOX": "true",
           "PORTAL_BASE_URL": f"http://127.0.0.1:{port}", **staff_env(), "LOG_LEVEL": "WARNING"}
    raw = b'{"id": 1e400, "salon_id": 500002}'
    token = sign_user_data(raw, "unknown")  # the process's own partner token is generated: a 403 at most
    sharp = [("POST", "/marketplace/activate", NESTED, JSON), ("POST", "/webhook/yclients", NESTED, JSON),
             ("POST", "/webhook/whatsapp", NESTED, JSON),
             ("POST", "/marketplace/admin/salon/1/disconnect", NESTED, JSON | KEY),
             ("POST", "/marketplace/admin/salon/1/disconnect", b'{"reason": "\\ud800"}', JSON | KEY),
             ("GET", f"/auth/yclients/redirect?salon_id=500002&user_data={encode_user_data(raw)}"
                     f"&user_data_sign={token}", None, {}),
             *[("GET", f"/marketplace/admin/salon/{bad}/status", None, KEY) for bad in BAD_IDS],
             *[("GET", f"/admin/salons/{bad}", None, {}) for bad in BAD_IDS],
             *[("GET", f"/marketplace/admin/salons?{name}={bad}", None, KEY) for name in ("q", "page")
               for bad in BAD_IDS],
             *[("GET", f"/admin/salons?{name}={bad}", None, {}) for name in ("q", "page") for bad in BAD_IDS],
             ("GET", f"/marketplace/admin/audit-log?page={2**64}", None, KEY)]
    with portal_process(env, port, tmp_path / "run", startup_timeout_s=60) as running:
        import httpx

        with httpx.Client(base_url=running.url, timeout=10) as client:
            login = client.post("/admin/login", data={"username": USERNAME, "password": PASSWORD})
            assert login.status_code in (200, 303), login.text
            before = counts(db)
            for method, path, body, headers in sharp:
                r = client.request(method, path, content=body, headers=headers, follow_redirects=False)
                assert r.status_code < 500, (method, path, r.status_code)
                if path.startswith("/admin/salons/"):  # signed in: the handler answered, not the login
                    assert r.status_code == 404, (path, r.status_code)
            assert counts(db) == before
        assert "unhandled error" not in running.log_path.read_text()


def test_phone_numbers_in_other_scripts_digits_are_refused(portal, db):
    """'²' and Arabic-Indic digits pass `str.isdigit`; a phone is ASCII digits only, so the
    owner gets the message beside the field and nothing reaches the gateway or the database."""
    from portal.whatsapp.gateways.waha import phone_from_me
    from portal.whatsapp.phones import PhoneError, parse_phone

    for phone in ("²" * 11, "+٧٩١٦١٢٣٤٥٦٧", "+7916１２３4567"):
        with pytest.raises(PhoneError):
            parse_phone(phone, "RU")
        assert phone_from_me({"id": f"{phone}@c.us"}) is None
    client, settings = portal
    land(client, settings.partner_token, salon_id=500001)
    client.post("/onboarding/whatsapp/start", headers={"HX-Request": "true"})
    r = client.post("/onboarding/whatsapp/pairing-code", data={"phone": "+٧٩١٦١٢٣٤٥٦٧"}, headers={"HX-Request": "true"})
    assert r.status_code == 422
    assert db.fetchval("SELECT phone FROM whatsapp_links") is None
