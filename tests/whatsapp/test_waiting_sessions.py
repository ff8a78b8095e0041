"""MAX_WAITING_SESSIONS: beyond that many gateway sessions waiting for a scan, a new start
shows the owner the busy screen instead of starting one more."""

from __future__ import annotations

from starlette.testclient import TestClient

from portal.app import create_app
from tests.helpers.landing import land

HX = {"HX-Request": "true", "HX-Target": "link-status"}


def test_a_start_beyond_the_cap_shows_the_busy_screen_and_starts_nothing(make_settings, db):
    settings = make_settings(MAX_WAITING_SESSIONS="2")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        for salon_id in (1, 2):
            land(c, settings.partner_token, salon_id=salon_id)
            assert 'data-state="busy"' not in c.post("/onboarding/whatsapp/start", headers=HX).text
        assert db.fetchval("SELECT count(*) FROM whatsapp_links WHERE status = 'awaiting_scan'") == 2
        land(c, settings.partner_token, salon_id=3)
        busy = c.post("/onboarding/whatsapp/start", headers=HX)
        assert busy.status_code == 200 and 'data-state="busy"' in busy.text and "hx-trigger=\"load delay:30s\"" in busy.text
        assert db.fetchval("SELECT status FROM whatsapp_links l JOIN salons s ON s.id = l.salon_id"
                           " WHERE s.yclients_salon_id = 3") == "idle"
        # A salon already waiting may start again (a restart adds no session) ...
        land(c, settings.partner_token, salon_id=1)
        assert 'data-state="busy"' not in c.post("/onboarding/whatsapp/start", headers=HX).text
        # ... and a waiting link nobody touched for five minutes stops counting.
        db.execute("UPDATE whatsapp_links SET updated_at = now() - interval '6 minutes'"
                   " WHERE salon_id = (SELECT id FROM salons WHERE yclients_salon_id = 2)")
        land(c, settings.partner_token, salon_id=3)
        assert 'data-state="busy"' not in c.post("/onboarding/whatsapp/start", headers=HX).text
