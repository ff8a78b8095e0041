"""Cross-site refusal, security headers, body limits, error pages."""

import pytest


def test_security_headers_on_pages(client):
    r = client.get("/sandbox/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'self'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"


def test_pages_have_no_inline_script(client):
    import re

    for path in ("/sandbox/", "/onboarding"):
        html = client.get(path).text
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
])
def test_cross_site_posts_are_refused(client, headers):
    r = client.post("/language", data={"lang": "en", "next": "/sandbox/"}, headers=headers, follow_redirects=False)
    assert r.status_code == 403
    assert "lang=" not in r.headers.get("set-cookie", "")


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8000"},
    {"Origin": "http://127.0.0.1:8000"},
    {},  # a non-browser client sends neither
])
def test_same_site_form_posts_work(client, headers):
    r = client.post("/language", data={"lang": "en", "next": "/sandbox/"}, headers=headers, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sandbox/"
    assert "lang=en" in r.headers["set-cookie"]


def test_language_switch_never_redirects_off_site(client):
    r = client.post("/language", data={"lang": "en", "next": "//evil.example/"}, follow_redirects=False)
    assert r.headers["location"] == "/onboarding"


def test_oversized_body_is_413(client):
    r = client.post("/language", content=b"x" * (200 * 1024), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


def test_unknown_page_is_a_friendly_404(client):
    r = client.get("/nope")
    assert r.status_code == 404 and "<html" in r.text
    assert client.get("/nope", headers={"Accept": "application/json"}).json()["code"] == "NOT_FOUND"


def test_request_id_is_carried_in_and_out(client):
    assert client.get("/livez", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.get("/livez", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert generated != "bad id with spaces" and len(generated) == 32


def test_a_junk_bearer_header_does_not_carry_the_owners_cookie_past_the_cross_site_check(client, settings, db):
    from tests.helpers.landing import land

    land(client, settings.partner_token, salon_id=4100)  # the owner's session cookie
    evil = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example", "Authorization": "Bearer junk"}
    r = client.post("/onboarding/whatsapp/start", headers=evil, follow_redirects=False)
    assert r.status_code == 403
    assert db.fetchval("SELECT count(*) FROM whatsapp_links") == 0  # no session was started


def test_a_header_credential_without_cookies_is_exempt(client, settings):
    """An API client authenticates by its header alone: no cookie, nothing a form could forge."""
    from tests.helpers.landing import land_for_token

    token = land_for_token(client, settings.partner_token, salon_id=4101)
    client.cookies.clear()
    r = client.post("/marketplace/api/qr", headers={"Authorization": f"Bearer {token}", "Origin": "https://app.example"})
    assert r.status_code == 200


def test_hsts_when_the_portal_is_served_over_https(make_settings):
    from starlette.testclient import TestClient

    from portal.app import create_app

    with TestClient(create_app(make_settings(PORTAL_BASE_URL="https://portal.example")),
                    base_url="https://portal.example") as c:
        assert c.get("/livez").headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    with TestClient(create_app(make_settings()), base_url="http://127.0.0.1:8000") as c:
        assert "strict-transport-security" not in c.get("/livez").headers
