"""Living inside YClients' app card (EMBED_IN_YCLIENTS): who may frame the pages, what the
owner's cookie says, and that every other deployment keeps today's strict defaults. The walk
itself, in a real cross-origin iframe, is tests/browser/test_app_card_iframe.py."""

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.platform.settings import SettingsError, load_settings
from tests.helpers.landing import landing_query, press_install
from tests.platform.test_settings import PROD


def _landing(settings):
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        press_install(client, 4501)  # in the app's own sandbox
        r = client.get(f"/auth/yclients/redirect?{landing_query(settings.partner_token, 4501)}",
                       follow_redirects=False)
        lang = client.post("/language", data={"lang": "en", "next": "/onboarding"}, follow_redirects=False)
    return r, lang


def test_by_default_only_we_frame_our_pages_and_the_cookie_is_lax(make_settings, db):
    r, lang = _landing(make_settings())
    assert "frame-ancestors 'self';" in r.headers["content-security-policy"]
    cookie = r.headers["set-cookie"].lower()
    assert "samesite=lax" in cookie and "partitioned" not in cookie
    assert "samesite=lax" in lang.headers["set-cookie"].lower()


def test_in_the_app_card_yclients_hosts_only_frame_us_and_the_cookie_is_partitioned(make_settings, db):
    r, lang = _landing(make_settings(EMBED_IN_YCLIENTS="true"))
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors yclients.com *.yclients.com;" in csp and "frame-ancestors 'self'" not in csp
    for cookie in (r.headers["set-cookie"].lower(), lang.headers["set-cookie"].lower()):
        assert "samesite=none" in cookie and "; secure" in cookie and "partitioned" in cookie
    assert "portal_session=" in r.headers["set-cookie"]


def test_the_frame_hosts_are_configurable(make_settings, db):
    r, _ = _landing(make_settings(EMBED_IN_YCLIENTS="true", YCLIENTS_FRAME_HOSTS="alteg.io, *.Alteg.io"))
    assert "frame-ancestors alteg.io *.alteg.io;" in r.headers["content-security-policy"]


def test_a_production_app_card_needs_https(tmp_path):
    env = {**PROD, "PORTAL_DATA_DIR": str(tmp_path), "EMBED_IN_YCLIENTS": "true"}
    with pytest.raises(SettingsError, match="EMBED_IN_YCLIENTS"):
        load_settings({**env, "PORTAL_BASE_URL": "http://portal.example"}, env_file=None)
    assert load_settings({**env, "PORTAL_BASE_URL": "https://portal.example"}, env_file=None).embed_in_yclients


@pytest.mark.parametrize("urls", ["https://portal.example/webhook/yclients", "https://x.example/a,ftp://x/b",
                                  "not a url"])
def test_entity_webhook_urls_are_urls_and_never_the_lifecycle_endpoint(tmp_path, urls):
    with pytest.raises(SettingsError, match="YCLIENTS_ENTITY_WEBHOOK_URLS"):
        load_settings({"PORTAL_DATA_DIR": str(tmp_path), "YCLIENTS_ENTITY_WEBHOOK_URLS": urls}, env_file=None)
