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
