"""Personal data that expires: erased by the worker after the retention that follows an
uninstall, or by staff at once (two steps, audited); the trail keeps no values."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from portal.app import create_app
from tests.support.landing import land
from tests.support.staff import sign_in, staff_env

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
