"""Staff actions write all or nothing, and the support listings page with bound parameters."""

from __future__ import annotations

import json

import asyncpg
import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.support import store as support
from tests.helpers.database import run
from tests.helpers.landing import land
from tests.helpers.staff import API_KEY, sign_in, staff_env

KEY = {"X-API-Key": API_KEY}


def refuse_audit_of(db, action: str) -> None:
    """Make the audit write of one action fail, as a full disk or a lost connection would."""
    db.execute("""CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql
                  AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$""")
    db.execute(f"""CREATE TRIGGER refuse_audit BEFORE INSERT ON admin_audit_log FOR EACH ROW
                   WHEN (NEW.action = '{action}') EXECUTE FUNCTION refuse_audit()""")


@pytest.fixture
def admin(make_settings):
    settings = make_settings(**staff_env())
    # A failed write is a 500: the test looks at the database, not at the traceback.
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000", raise_server_exceptions=False) as c:
        yield c, settings


def test_disconnect_writes_nothing_when_one_write_fails(admin, db):
    client, settings = admin
    land(client, settings.partner_token, salon_id=500001)
    client.post("/onboarding/whatsapp/start", headers={"HX-Request": "true"})
    before = db.fetchval("SELECT status FROM whatsapp_links")
    refuse_audit_of(db, "disconnect")
    r = client.post("/marketplace/admin/salon/500001/disconnect", headers=KEY, json={"reason": "owner asked"})
    assert r.status_code == 500
    assert db.fetchval("SELECT status FROM whatsapp_links") == before != "logged_out"
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'whatsapp_disconnected'") == 0
    assert db.count("admin_audit_log") == 0


def test_disconnect_of_a_salon_without_a_link_creates_no_link_when_a_write_fails(admin, db):
    client, settings = admin
    land(client, settings.partner_token, salon_id=500001)
    refuse_audit_of(db, "disconnect")
    assert client.post("/marketplace/admin/salon/500001/disconnect", headers=KEY,
                       json={"reason": "owner asked"}).status_code == 500
    assert db.count("whatsapp_links") == 0


def test_restart_writes_nothing_when_one_write_fails(admin, db):
    client, settings = admin
    land(client, settings.partner_token, salon_id=500001)
    client.post("/onboarding/whatsapp/start", headers={"HX-Request": "true"})
    db.execute("UPDATE whatsapp_links SET status = 'failed', last_error = 'gateway said no'")
    sign_in(client)
    refuse_audit_of(db, "restart_session")
    assert client.post("/admin/salons/500001/restart", follow_redirects=False).status_code == 500
    assert db.fetchval("SELECT status FROM whatsapp_links") == "failed"
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'whatsapp_restarted'") == 0
    assert db.fetchval("SELECT count(*) FROM admin_audit_log WHERE action = 'restart_session'") == 0


def test_restart_and_disconnect_still_write_state_event_and_audit(admin, db):
    client, settings = admin
    land(client, settings.partner_token, salon_id=500001)
    sign_in(client)
    client.post("/admin/salons/500001/restart", follow_redirects=False)
    assert db.fetchval("SELECT status FROM whatsapp_links") == "starting"
    client.post("/admin/salons/500001/disconnect", data={"reason": "test"}, follow_redirects=False)
    assert db.fetchval("SELECT status FROM whatsapp_links") == "logged_out"
    events = [r["event_type"] for r in db.fetch(
        "SELECT event_type FROM marketplace_events WHERE event_type LIKE 'whatsapp_%' ORDER BY id")]
    assert events == ["whatsapp_restarted", "whatsapp_disconnected"]
    audit = [(r["action"], r["result"]) for r in db.fetch(
        "SELECT action, result FROM admin_audit_log WHERE action <> 'login' ORDER BY id")]
    assert audit == [("restart_session", "ok"), ("disconnect", "ok")]


class RecordingPool:
    """A pool whose connections note every SQL text they are sent."""

    def __init__(self, conn: asyncpg.Connection):
        self.conn, self.sql = conn, []

    def acquire(self):
        pool = self

        class Borrowed:
            async def __aenter__(self):
                return pool

            async def __aexit__(self, *exc):
                return False

        return Borrowed()

    def __getattr__(self, name):
        method = getattr(self.conn, name)

        async def call(sql, *args, **kw):
            self.sql.append(sql)
            return await method(sql, *args, **kw)

        return call


def test_salon_pages_bind_limit_and_offset(db):
    total = support.PAGE_SIZE + 2
    db.execute("INSERT INTO salons (yclients_salon_id, name, landed_at) SELECT 900000 + n, 'Salon ' || n, now()"
               " FROM generate_series(1, $1) n", total)

    async def pages():
        conn = await asyncpg.connect(db.dsn)
        try:
            pool = RecordingPool(conn)
            first = await support.salons_page(pool, support.SalonFilter(page=1))
            second = await support.salons_page(pool, support.SalonFilter(page=2))
            beyond = await support.salons_page(pool, support.SalonFilter(page=3))
            return first, second, beyond, pool.sql
        finally:
            await conn.close()

    (rows1, total1), (rows2, total2), (rows3, total3), sql = run(pages())
    assert total1 == total2 == total3 == total
    assert len(rows1) == support.PAGE_SIZE and len(rows2) == 2 and rows3 == []
    ids = [r["yclients_salon_id"] for r in rows1 + rows2]
    assert len(set(ids)) == total
    # The page is a bound parameter: every page sends the very same SQL text.
    assert len(set(sql)) == len(sql) // 3


def test_salon_filters_combine(db):
    db.execute("INSERT INTO salons (yclients_salon_id, name, integration_status, landed_at) VALUES"
               " (1, 'Лилия 100%', 'active', now()), (2, 'Лилия', 'pending_whatsapp', now()),"
               " (3, 'Роза', 'active', now())")

    async def query(**kw):
        conn = await asyncpg.connect(db.dsn)
        try:
            rows, total = await support.salons_page(RecordingPool(conn), support.SalonFilter(**kw))
            return sorted(r["yclients_salon_id"] for r in rows), total
        finally:
            await conn.close()

    assert run(query(status="active")) == ([1, 3], 2)
    assert run(query(q="Лилия")) == ([1, 2], 2)
    assert run(query(q="100%")) == ([1], 1)
    assert run(query(q="%")) == ([1], 1)  # % is text: only the name holding it
    assert run(query(q="3")) == ([3], 1)
    assert run(query(status="active", q="Лилия")) == ([1], 1)
    assert run(query(attention_only=True)) == ([], 0)


@pytest.mark.parametrize("reason", ["owner\x00asked", "owner \ud800 asked", "\x07" * 3])
def test_a_disconnect_whose_reason_fails_validation_does_nothing(admin, db, reason):
    """Validate first, then act: a reason the database cannot take (NUL, a lone surrogate) or
    that says nothing (control characters only) is refused before the gateway logout."""
    client, settings = admin
    land(client, settings.partner_token, salon_id=500001)
    client.post("/onboarding/whatsapp/start", headers={"HX-Request": "true"})
    before = db.fetchval("SELECT status FROM whatsapp_links")
    body = json.dumps({"reason": reason}).encode()  # ASCII JSON: the surrogate travels as \ud800
    r = client.post("/marketplace/admin/salon/500001/disconnect", headers={**KEY, "Content-Type": "application/json"},
                    content=body)
    assert (r.status_code, r.json()["code"]) == (422, "REASON_REQUIRED")
    sign_in(client)
    page = client.post("/admin/salons/500001/disconnect", data={"reason": reason.replace("\ud800", "\x00")},
                       follow_redirects=False)
    assert page.status_code == 422
    assert db.fetchval("SELECT status FROM whatsapp_links") == before == "awaiting_scan"
    assert db.fetchval("SELECT count(*) FROM admin_audit_log WHERE action = 'disconnect'") == 0
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'whatsapp_disconnected'") == 0
