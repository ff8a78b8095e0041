"""Personal data that expires: erased by the worker after the retention that follows an
uninstall, or by staff at once (two steps, audited); the trail keeps no values."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from portal.app import create_app
from tests.helpers.landing import land
from tests.helpers.staff import sign_in, staff_env

OWNER = {"id": 7, "name": "Анна Петрова", "phone": "+79001234567", "email": "anna@example.com",
         "salon_name": "Лилия"}


def land_owner(client, token: str, yclients_salon_id: int, db) -> int:
    land(client, token, salon_id=yclients_salon_id, user=OWNER | {"salon_id": yclients_salon_id})
    pk = db.fetchval("SELECT id FROM salons WHERE yclients_salon_id = $1", yclients_salon_id)
    db.execute("INSERT INTO whatsapp_links (salon_id, session_name, status, phone) "
               "VALUES ($1, $2, 'connected', '79161112233')", pk, f"salon-{yclients_salon_id}")
    return pk


def personal(db, pk: int) -> tuple:
    user = db.fetchrow("SELECT name, phone, email FROM marketplace_users WHERE salon_id = $1", pk)
    return (user["name"], user["phone"], user["email"],
            db.fetchval("SELECT phone FROM whatsapp_links WHERE salon_id = $1", pk))


def no_values_in_the_trail(db) -> None:
    trail = " ".join(str(r["payload"]) for r in db.fetch("SELECT payload FROM marketplace_events"))
    trail += " ".join(str(r["detail"]) for r in db.fetch("SELECT detail FROM admin_audit_log"))
    for value in ("79001234567", "79161112233", "anna@example.com", "Петрова"):
        assert value not in trail


def test_the_worker_erases_personal_data_after_the_retention_that_follows_an_uninstall(make_settings, db):
    settings = make_settings(PERSONAL_DATA_RETENTION_DAYS="30", WEBHOOK_WORKER_INTERVAL_S="0.05")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        old = land_owner(c, settings.partner_token, 520001, db)
        recent = land_owner(c, settings.partner_token, 520002, db)
        active = land_owner(c, settings.partner_token, 520003, db)
        db.execute("UPDATE salons SET integration_status = 'uninstalled' WHERE id = ANY($1::bigint[])", [old, recent])
        assert db.fetchval("SELECT count(*) FROM salons WHERE uninstalled_at IS NOT NULL") == 2  # the clock runs
        db.execute("UPDATE salons SET uninstalled_at = now() - interval '31 days' WHERE id = $1", old)
        db.execute("UPDATE salons SET uninstalled_at = now() - interval '10 days' WHERE id = $1", recent)
        deadline = time.monotonic() + 10
        while personal(db, old) != (None, None, None, None):
            assert time.monotonic() < deadline, "the worker did not erase"
            time.sleep(0.05)
        assert personal(db, recent) == ("Анна Петрова", "+79001234567", "anna@example.com", "79161112233")
        assert personal(db, active)[0] == "Анна Петрова"
        assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'personal_data_erased'") == 1
        no_values_in_the_trail(db)


def test_a_reinstall_stops_the_clock(make_settings, db):
    settings = make_settings()
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        pk = land_owner(c, settings.partner_token, 520004, db)
        db.execute("UPDATE salons SET integration_status = 'uninstalled' WHERE id = $1", pk)
        db.execute("UPDATE salons SET integration_status = 'pending_whatsapp' WHERE id = $1", pk)
        assert db.fetchval("SELECT uninstalled_at FROM salons WHERE id = $1", pk) is None


def test_staff_erase_personal_data_at_once_in_two_steps_and_audited(make_settings, db):
    settings = make_settings(**staff_env())
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        pk = land_owner(c, settings.partner_token, 520005, db)
        sign_in(c)
        confirm = c.get("/admin/salons/520005/erase")
        assert confirm.status_code == 200 and "cannot be undone" in confirm.text
        assert personal(db, pk)[0] == "Анна Петрова"  # the first step changes nothing
        done = c.post("/admin/salons/520005/erase", data={"reason": "the owner asked"}, follow_redirects=False)
        assert done.status_code == 303
        assert personal(db, pk) == (None, None, None, None)
        assert db.fetchval("SELECT result FROM admin_audit_log WHERE action = 'erase_personal_data'") == "ok"
        assert db.fetchval("SELECT personal_data_erased_at IS NOT NULL FROM salons WHERE id = $1", pk)
        no_values_in_the_trail(db)


def test_an_erased_number_stays_erased_while_whatsapp_was_linked(make_settings, db):
    """The erase logs the linked session out first: neither the owner's polls nor the gateway's
    events (a replayed one claiming the number, too) bring the number back."""
    from urllib.parse import unquote_plus

    from tests.helpers.gateways.fake_waha import create_fake_waha
    from tests.helpers.partner import APP_ID, PARTNER_TOKEN, partner_server
    from tests.helpers.servers import serve
    from tests.house.test_safe_methods import PHONE, SALON, active_and_connected

    app, waha = create_fake_waha("waha-key")
    waha.status_on_start = "SCAN_QR_CODE"
    with serve(app) as waha_url, partner_server() as (partner_url, market):
        settings = make_settings(
            **staff_env(), SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=partner_url,
            YCLIENTS_APP_ID=str(APP_ID), WHATSAPP_GATEWAY="waha", WAHA_URL=waha_url, WAHA_API_KEY="waha-key",
            WAHA_WEBHOOK_HMAC_KEY="hook-key", WHATSAPP_REFRESH_S="0", WHATSAPP_SAFETY_POLL_S="0.1")
        with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
            active_and_connected(c, settings, waha, market)
            replay = waha.webhook_delivery(f"salon-{SALON}")  # WORKING, me: the number
            assert db.fetchval("SELECT phone FROM whatsapp_links") == PHONE
            sign_in(c)
            done = c.post(f"/admin/salons/{SALON}/erase", data={"reason": "the owner asked"}, follow_redirects=False)
            assert done.status_code == 303
            assert "logged out at the gateway" in unquote_plus(done.headers["location"])  # the dashboard says which
            assert f"POST /api/sessions/salon-{SALON}/logout" in waha.paths()
            for _, body, headers in replay:  # the event from before, delivered (again) now
                assert c.post("/webhook/whatsapp", content=body, headers=headers).status_code == 200
            for _ in range(5):  # the owner's page keeps looking at the gateway
                c.get("/onboarding/whatsapp/status", headers={"HX-Request": "true"})
                time.sleep(0.12)
            link = db.fetchrow("SELECT status, phone, connected_phone FROM whatsapp_links")
            assert (link["phone"], link["connected_phone"]) == (None, None) and link["status"] != "connected"
            assert db.fetchval("SELECT name FROM marketplace_users") is None
            erased = db.fetchval("SELECT payload FROM marketplace_events WHERE event_type = 'personal_data_erased'")
            assert '"whatsapp": "logged_out"' in erased
            no_values_in_the_trail(db)


def test_an_erase_the_gateway_cannot_log_out_erases_nothing_and_says_so(make_settings, db):
    from urllib.parse import unquote_plus

    from tests.helpers.gateways.fake_waha import create_fake_waha
    from tests.helpers.partner import APP_ID, PARTNER_TOKEN, partner_server
    from tests.helpers.servers import serve
    from tests.house.test_safe_methods import PHONE, SALON, active_and_connected

    app, waha = create_fake_waha("waha-key")
    waha.status_on_start = "SCAN_QR_CODE"
    with serve(app) as waha_url, partner_server() as (partner_url, market):
        settings = make_settings(
            **staff_env(), SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=partner_url,
            YCLIENTS_APP_ID=str(APP_ID), WHATSAPP_GATEWAY="waha", WAHA_URL=waha_url, WAHA_API_KEY="waha-key",
            WAHA_WEBHOOK_HMAC_KEY="hook-key", WHATSAPP_REFRESH_S="0", WHATSAPP_SAFETY_POLL_S="3600")
        with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
            active_and_connected(c, settings, waha, market)
            sign_in(c)
            waha.fail_with = 500
            done = c.post(f"/admin/salons/{SALON}/erase", data={"reason": "the owner asked"}, follow_redirects=False)
            waha.fail_with = None
            assert done.status_code == 303 and "Nothing was erased" in unquote_plus(done.headers["location"])
            assert db.fetchval("SELECT phone FROM whatsapp_links") == PHONE
            assert db.fetchval("SELECT name FROM marketplace_users") is not None
            assert db.fetchval("SELECT result FROM admin_audit_log WHERE action = 'erase_personal_data'").startswith(
                "error: gateway")
