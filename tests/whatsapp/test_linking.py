"""Linking WhatsApp through the portal's pages and JSON API, on the simulator and on a
fake WAHA server over real HTTP."""

import html
import re
import threading
import time

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from tests.helpers.landing import land, land_for_token

HX = {"HX-Request": "true"}


def version_of(html: str) -> str:
    return re.search(r"/onboarding/whatsapp/status\?v=([0-9a-f]+)", html).group(1)


def test_start_shows_a_qr_and_the_poll_answers_no_change(client, settings, db):
    land(client, settings.partner_token, salon_id=500001)
    r = client.post("/onboarding/whatsapp/start", headers=HX)
    assert r.status_code == 200 and 'data-state="awaiting_scan"' in r.text and "<svg" in r.text
    v = version_of(r.text)
    again = client.get(f"/onboarding/whatsapp/status?v={v}", headers=HX)
    assert again.status_code == 204 and again.content == b""
    stale = client.get("/onboarding/whatsapp/status?v=000000", headers=HX)
    assert stale.status_code == 200 and 'data-state="awaiting_scan"' in stale.text
    assert db.fetchval("SELECT status FROM whatsapp_links") == "awaiting_scan"
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'qr_shown'") == 1


def test_scan_in_the_simulator_leads_to_connected_with_a_masked_phone(client, settings, db):
    land(client, settings.partner_token, salon_id=500002)
    client.post("/onboarding/whatsapp/start", headers=HX)
    assert client.post("/sandbox/whatsapp/500002/scan", data={"phone": "+7 900 000-00-02"},
                       follow_redirects=False).headers["location"].startswith("/sandbox/?result=done")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = client.get("/onboarding/whatsapp/status", headers=HX)
        if 'data-state="connected"' in r.text:
            break
        time.sleep(0.2)
    assert 'data-state="connected"' in r.text and "+7 ••• •••-••-02" in r.text
    assert "79000000002" not in r.text
    assert '<div id="link-phone-slot" hx-swap-oob="true"></div>' in r.text  # the phone form goes away
    assert db.fetchval("SELECT phone FROM whatsapp_links") == "79000000002"
    page = client.get("/onboarding").text
    assert 'class="step step-done"' in page


def test_without_javascript_start_redirects_back_to_the_page(client, settings):
    land(client, settings.partner_token, salon_id=500003)
    r = client.post("/onboarding/whatsapp/start", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/onboarding"
    assert 'data-testid="qr"' in client.get("/onboarding").text


@pytest.mark.parametrize("phone", ["", "12", "abc", "+7 916 123", "0000000000000000000", "x" * 40])
def test_a_bad_phone_gets_a_message_beside_the_field(client, settings, db, phone):
    land(client, settings.partner_token, salon_id=500001)
    r = client.post("/onboarding/whatsapp/pairing-code", data={"phone": phone}, headers=HX)
    assert r.status_code == 422
    assert r.headers["hx-retarget"] == "#link-phone" and 'data-testid="phone-error"' in r.text
    no_js = client.post("/onboarding/whatsapp/pairing-code", data={"phone": phone})
    assert no_js.status_code == 422 and 'data-testid="phone-error"' in no_js.text
    assert db.fetchval("SELECT count(*) FROM whatsapp_links WHERE pairing_code IS NOT NULL") == 0


def ask_for_a_code(client, typed: str, *, confirm: bool = True) -> tuple[str, str | None]:
    """Type a number and see it as understood; then confirm it: (the sentence shown to
    confirm, the answer to the confirmation or None)."""
    first = client.post("/onboarding/whatsapp/pairing-code", data={"phone": typed}, headers=HX)
    assert first.status_code == 200 and first.headers["hx-retarget"] == "#link-phone", first.text
    shown = html.unescape(re.search(r'data-testid="phone-confirm">([^<]*)<', first.text).group(1))
    if not confirm:
        return shown, None
    confirmed = re.search(r'name="confirmed" value="(\d+)"', first.text).group(1)
    r = client.post("/onboarding/whatsapp/pairing-code", data={"phone": typed, "confirmed": confirmed}, headers=HX)
    assert r.status_code == 200
    return shown, r.text


def test_pairing_code_path(client, settings, db):
    land(client, settings.partner_token, salon_id=500001)
    shown, answer = ask_for_a_code(client, "8 (916) 123-45-67")
    assert "+7 916 123-45-67" in shown
    code = re.search(r'data-testid="pairing-code">([A-Z0-9]{4}-[A-Z0-9]{4})<', answer).group(1)
    assert db.fetchval("SELECT pairing_code FROM whatsapp_links") == code
    client.post("/sandbox/whatsapp/500001/scan", data={"code": code})
    deadline = time.monotonic() + 5
    while 'data-state="connected"' not in client.get("/onboarding/whatsapp/status", headers=HX).text:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert db.fetchval("SELECT phone FROM whatsapp_links") == "79161234567"


def test_no_code_is_asked_for_before_the_owner_saw_the_number(client, settings, db):
    land(client, settings.partner_token, salon_id=500001)
    ask_for_a_code(client, "8 916 123-45-67", confirm=False)
    assert db.fetchval("SELECT count(*) FROM whatsapp_links WHERE pairing_code IS NOT NULL") == 0
    # A changed number is shown again, whatever the form said was confirmed before.
    r = client.post("/onboarding/whatsapp/pairing-code", data={"phone": "8 916 123-45-68", "confirmed": "79161234567"},
                    headers=HX)
    assert 'data-testid="phone-confirm"' in r.text and "+7 916 123-45-68" in html.unescape(r.text)
    assert db.fetchval("SELECT count(*) FROM whatsapp_links WHERE pairing_code IS NOT NULL") == 0
    # Without JavaScript: the whole page, with the number to confirm in its form.
    no_js = client.post("/onboarding/whatsapp/pairing-code", data={"phone": "8 916 123-45-67"})
    assert no_js.status_code == 200 and 'data-testid="phone-confirm"' in no_js.text
    assert 'name="confirmed" value="79161234567"' in no_js.text and 'data-testid="salon-heading"' in no_js.text
    confirmed = client.post("/onboarding/whatsapp/pairing-code", data={"phone": "+79161234567", "confirmed": "79161234567"},
                            follow_redirects=False)
    assert confirmed.status_code == 303 and db.fetchval("SELECT pairing_code IS NOT NULL FROM whatsapp_links")


@pytest.mark.parametrize(("owner_phone", "default_region", "typed", "understood", "country"), [
    ("375291234567", "RU", "8 029 123-45-67", "+375 29 123-45-67", "Belarus"),  # not +7 029…
    ("+380501112233", "RU", "067 123 4567", "+380 67 123 4567", "Ukraine"),  # was refused
    ("998901112233", "RU", "90 123 45 67", "+998 90 123 45 67", "Uzbekistan"),
    ("79990009900", "BY", "8 916 123-45-67", "+7 916 123-45-67", "Russia"),  # the owner's number wins
    (None, "KZ", "8 701 123 45 67", "+7 701 123 4567", "Kazakhstan"),  # no number: the setting
    (None, "RU", "+375 29 123 45 67", "+375 29 123-45-67", "Belarus"),  # a '+' number reads alike anywhere
])
def test_a_typed_number_is_read_in_the_owners_country(make_settings, db, owner_phone, default_region, typed,
                                                      understood, country):
    settings = make_settings(DEFAULT_PHONE_REGION=default_region)
    user = {"id": 7, "name": "Owner", "salon_id": 500001, **({"phone": owner_phone} if owner_phone else {})}
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000", headers={"Accept-Language": "en"}) as client:
        land(client, settings.partner_token, salon_id=500001, user=user)
        shown, answer = ask_for_a_code(client, typed)
        assert understood in shown and country in shown
        code = re.search(r'data-testid="pairing-code">([A-Z0-9]{4}-[A-Z0-9]{4})<', answer).group(1)
        client.post("/sandbox/whatsapp/500001/scan", data={"code": code})
        deadline = time.monotonic() + 5
        while 'data-state="connected"' not in client.get("/onboarding/whatsapp/status", headers=HX).text:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    # The code went to the number the owner confirmed: it is the one that connected.
    assert db.fetchval("SELECT phone FROM whatsapp_links") == understood.replace(" ", "").replace("-", "")[1:]


# --- the JSON API -------------------------------------------------------------------

def test_api_qr_and_status(client, settings):
    token = land_for_token(client, settings.partner_token, salon_id=700)
    auth = {"Authorization": f"Bearer {token}"}
    before = client.get("/marketplace/api/status", headers=auth).json()
    assert before == {"status": "idle", "connected": False, "phone": None, "has_qr": False}
    r = client.post("/marketplace/api/qr", headers=auth)
    body = r.json()
    assert r.status_code == 200 and body["success"] is True and body["qr"].startswith("2@")
    assert body["session_id"] == "salon-700" and 0 < body["expires_in"] <= 60
    # The fast path: a live QR is returned again without starting anything.
    assert client.post("/marketplace/api/qr", headers=auth).json()["qr"] == body["qr"]
    after = client.get("/marketplace/api/status", headers=auth).json()
    assert after["status"] == "awaiting_scan" and after["has_qr"] is True


@pytest.mark.parametrize("auth", [None, "Bearer nonsense", "Basic abc", "Bearer "])
def test_api_without_a_valid_token_is_401(client, auth):
    headers = {"Authorization": auth} if auth else {}
    assert client.post("/marketplace/api/qr", headers=headers).status_code == 401
    assert client.get("/marketplace/api/status", headers=headers).status_code == 401


def test_api_ignores_the_session_cookie(client, settings):
    land(client, settings.partner_token, salon_id=701)  # the cookie is set ...
    assert client.get("/marketplace/api/status").status_code == 401  # ... but the API wants Bearer


def test_one_salons_token_never_sees_another_salons_link(client, settings, db):
    token_a = land_for_token(client, settings.partner_token, salon_id=500001)
    token_b = land_for_token(client, settings.partner_token, salon_id=500002)
    client.post("/marketplace/api/qr", headers={"Authorization": f"Bearer {token_a}"})
    client.post("/sandbox/whatsapp/500001/scan", data={"phone": "79160000001"})
    time.sleep(0.1)
    for _ in range(30):
        a = client.get("/marketplace/api/status", headers={"Authorization": f"Bearer {token_a}"}).json()
        if a["connected"]:
            break
        time.sleep(0.1)
    b = client.get("/marketplace/api/status?salon_id=500001&session=salon-500001",
                   headers={"Authorization": f"Bearer {token_b}"}).json()
    assert a["connected"] is True
    assert b == {"status": "idle", "connected": False, "phone": None, "has_qr": False}


def test_breaker_opens_and_the_api_answers_503_with_retry_after(make_settings):
    settings = make_settings(QR_BREAKER_FAILURE_THRESHOLD="2", QR_BREAKER_RESET_TIMEOUT_S="30")
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        c.post("/sandbox/whatsapp/fault", data={"mode": "down"})
        auth = {"Authorization": f"Bearer {land_for_token(c, settings.partner_token, salon_id=900)}"}
        first = c.post("/marketplace/api/qr", headers=auth)
        assert first.status_code == 502 and first.json()["code"] == "GATEWAY_ERROR"
        assert c.post("/marketplace/api/qr", headers=auth).status_code == 502
        r = c.post("/marketplace/api/qr", headers=auth)
        assert r.status_code == 503 and r.json()["code"] == "SERVICE_UNAVAILABLE"
        assert 0 < int(r.headers["retry-after"]) <= 30 and r.json()["retry_after"] == int(r.headers["retry-after"])
        # The page shows the friendly retry screen, as a 200 fragment htmx will swap.
        land(c, settings.partner_token, salon_id=900)
        page = c.post("/onboarding/whatsapp/start", headers=HX)
        assert page.status_code == 200 and 'data-state="busy"' in page.text and "data-countdown" in page.text
        health = c.get("/marketplace/health", headers={"Authorization": "Bearer health-token-for-tests"}).json()
        assert health["status"] == "degraded"
        assert health["circuitBreakers"]["qrGeneration"]["state"] == "open"
        assert health["circuitBreakers"]["qrGeneration"]["total_rejections"] >= 2


# --- against a fake WAHA over HTTP ----------------------------------------------------

def test_without_gateway_events_many_pollers_cost_at_most_one_gateway_call_per_second(make_settings, waha):
    url, state = waha
    settings = make_settings(WHATSAPP_GATEWAY="waha", WAHA_URL=url, WAHA_API_KEY="waha-key",
                             WHATSAPP_REFRESH_S="1.0", WAHA_WEBHOOKS="off")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=321)
        assert 'data-state="awaiting_scan"' in c.post("/onboarding/whatsapp/start", headers=HX).text
        state.requests.clear()
        errors = []

        # 8 threads sharing the app's running loop through the one TestClient.
        def worker():
            until = time.monotonic() + 2.5
            while time.monotonic() < until:
                r = c.get("/onboarding/whatsapp/status", headers=HX)
                if r.status_code != 200:
                    errors.append(r.status_code)
                time.sleep(0.02)

        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        # Session and QR reads together.
        reads = [p for p in state.paths() if p.startswith("GET /api/") and "salon-321" in p]
        assert not errors
        polls = 8 * 2.5 / 0.02
        # Hundreds of polls over `elapsed` seconds: at most one gateway call per started second.
        assert 2 <= len(reads) <= int(elapsed) + 1 < polls / 10


def _waha_portal(make_settings, url, **env):
    settings = make_settings(WHATSAPP_GATEWAY="waha", WAHA_URL=url, WAHA_API_KEY="waha-key",
                             WAHA_WEBHOOK_HMAC_KEY="hook-key", WHATSAPP_REFRESH_S="3600", **env)
    return settings, create_app(settings)


def _signed(body: bytes) -> dict[str, str]:
    import hashlib
    import hmac

    return {"X-Webhook-Hmac": hmac.new(b"hook-key", body, hashlib.sha512).hexdigest(),
            "X-Webhook-Hmac-Algorithm": "sha512", "Content-Type": "application/json"}


def test_waha_webhook_updates_the_link_at_once_with_what_the_gateway_confirms(make_settings, waha):
    import json

    url, state = waha
    settings, app = _waha_portal(make_settings, url)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=322)
        c.post("/onboarding/whatsapp/start", headers=HX)
        state.set_status("salon-322", "WORKING")
        state.set_me("salon-322", "79165550000")
        # The event claims another number: the number stored is the gateway's.
        body = json.dumps({"event": "session.status", "session": "salon-322",
                           "me": {"id": "79990000000@c.us", "pushName": "Forged"},
                           "payload": {"status": "WORKING"}}).encode()
        ok = c.post("/webhook/whatsapp", content=body, headers=_signed(body))
        assert ok.status_code == 200 and ok.json() == {"ok": True}
        # No gateway refresh is due (WHATSAPP_REFRESH_S is an hour): the webhook alone moved it.
        shown = c.get("/onboarding/whatsapp/status", headers=HX).text
        assert 'data-state="connected"' in shown and "00" in shown
        bad = c.post("/webhook/whatsapp", content=body, headers={"X-Webhook-Hmac": "00" * 64})
        assert bad.status_code == 401
        junk = b"{not json"
        assert c.post("/webhook/whatsapp", content=junk, headers=_signed(junk)).status_code == 400
        other = body.replace(b"salon-322", b"salon-999")
        r = c.post("/webhook/whatsapp", content=other, headers=_signed(other))
        assert r.status_code == 200 and r.json() == {"ignored": True}


def test_a_signed_working_webhook_the_gateway_contradicts_connects_nothing(make_settings, waha, db):
    import json

    url, state = waha
    settings, app = _waha_portal(make_settings, url)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=323)
        c.post("/onboarding/whatsapp/start", headers=HX)
        state.set_status("salon-323", "SCAN_QR_CODE")  # what is true: still waiting for a scan
        body = json.dumps({"event": "session.status", "session": "salon-323",
                           "me": {"id": "79990000000@c.us", "pushName": "Forged"},
                           "payload": {"status": "WORKING"}}).encode()
        assert c.post("/webhook/whatsapp", content=body, headers=_signed(body)).status_code == 200
        assert db.fetchval("SELECT status FROM whatsapp_links") == "awaiting_scan"
        assert db.fetchval("SELECT phone FROM whatsapp_links") is None
        assert "GET /api/sessions/salon-323" in state.paths()  # it asked the gateway
        c.post("/marketplace/activate", headers=HX)  # activation refuses: WhatsApp is not linked
        assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"


def test_the_fake_gateways_own_documented_webhook_drives_the_link(make_settings, waha, db):
    """The fake WAHA delivers session.status as WAHA documents it, signed, to the URL the
    portal configured on session creation (served for real, so the delivery is real HTTP)."""
    from tests.helpers.servers import free_port, serve

    url, state = waha
    port = free_port()
    settings, app = _waha_portal(make_settings, url, PORTAL_BASE_URL=f"http://127.0.0.1:{port}")
    with serve(app, port=port) as base, TestClient(app, base_url=base) as c:
        land(c, settings.partner_token, salon_id=324)
        c.post("/onboarding/whatsapp/start", headers=HX)
        state.set_status("salon-324", "WORKING")
        state.set_me("salon-324", "79165550024")
        assert state.emit("salon-324") == [200]
        assert db.fetchval("SELECT status FROM whatsapp_links") == "connected"
        assert db.fetchval("SELECT phone FROM whatsapp_links") == "79165550024"


def test_qr_images_are_drawn_once_and_bounded():
    from portal.whatsapp.qr_image import QrImages

    images = QrImages(capacity=2)
    first = images.svg("2@a,b,c,d")
    assert images.svg("2@a,b,c,d") is first  # the cached drawing, not a new one
    images.svg("2@e,f,g,h")
    images.svg("2@i,j,k,l")  # pushes out the least recently used
    assert images.svg("2@a,b,c,d") is not first and str(images.svg("2@a,b,c,d")) == str(first)


def test_a_shown_pairing_code_can_be_swapped_back_for_the_qr(client, settings, db):
    land(client, settings.partner_token, salon_id=500001)
    _, answer = ask_for_a_code(client, "8 916 123-45-67")
    assert 'data-testid="pairing-code"' in answer and 'data-testid="back-to-qr"' in answer
    assert 'data-testid="pairing-code"' in client.get("/onboarding").text  # a reload keeps the code…
    r = client.post("/onboarding/whatsapp/qr", headers=HX)
    assert r.status_code == 200 and 'data-testid="qr"' in r.text and 'data-testid="pairing-code"' not in r.text
    assert db.fetchval("SELECT pairing_code FROM whatsapp_links") is None
    assert 'data-testid="qr"' in client.get("/onboarding").text  # …and the QR stays after one too
    no_js = client.post("/onboarding/whatsapp/qr", follow_redirects=False)
    assert no_js.status_code == 303 and no_js.headers["location"] == "/onboarding"


def test_a_reloaded_failed_start_keeps_its_reason_and_its_place_in_the_backoff(make_settings, db):
    settings = make_settings(WHATSAPP_RETRY_S="1", QR_BREAKER_FAILURE_THRESHOLD="50")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000",
                    headers={"Accept-Language": "en"}) as client:
        land(client, settings.partner_token, salon_id=500001)
        client.post("/sandbox/whatsapp/fault", data={"mode": "down"})
        for attempt in (0, 1, 2):  # the click, then two retries by themselves
            r = client.post("/onboarding/whatsapp/start", data={"attempt": str(attempt)}, headers=HX)
            assert 'data-state="failed"' in r.text and "did not answer" in r.text
        assert 'load delay:4s' in r.text and '"attempt": 3' in r.text
        page = client.get("/onboarding").text
        assert "did not answer" in page  # the reason line survives the reload
        assert 'load delay:4s' in page and '"attempt": 3' in page  # and so does the backoff
        client.post("/sandbox/whatsapp/fault", data={"mode": "none"})
        client.post("/onboarding/whatsapp/start", headers=HX)
        assert db.fetchval("SELECT failed_starts FROM whatsapp_links") == 0
