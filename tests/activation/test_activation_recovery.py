"""Recovery of an install YClients holds while our commit was lost, against a fake YClients
whose install status has exactly the documented fields (no API key, nor part of one).

The SIGKILL test runs the portal as a real process (`python -m portal serve`), stalls its
commit on a trigger waiting for an advisory lock this test holds, and kills the process with
SIGKILL once the fake YClients answered 301: the very window the intent exists for.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from starlette.testclient import TestClient

from portal.activation.activate import derive_api_key
from portal.app import create_app
from portal.platform.migrations import apply_migrations
from portal.platform.settings import load_settings
from tests.activation.test_activation import connect_whatsapp, ready_salon
from tests.helpers.database import Db
from tests.helpers.landing import landing_query
from tests.helpers.partner import APP_ID, PARTNER_TOKEN, install_calls, partner_server, pending_status_route
from tests.helpers.servers import free_port
from tests.helpers.staff import sign_in, staff_env

ROOT = Path(__file__).resolve().parent.parent.parent
STALL_LOCK = 917_311  # the advisory lock the stalled commit waits on


def wait_for(check, timeout_s: float = 20.0, what: str = "condition"):
    """Poll `check` until it answers truthy: the awaited thing is in another process."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class HeldLock:
    """A session-level advisory lock held by this test on its own connection (in a thread
    with its own event loop) until `release()`."""

    def __init__(self, dsn: str, key: int) -> None:
        self._held, self._release = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._hold(dsn, key)), daemon=True)
        self._thread.start()
        assert self._held.wait(10)

    async def _hold(self, dsn: str, key: int) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            self._held.set()
            await asyncio.to_thread(self._release.wait)
        finally:
            await conn.close()  # the lock goes with the session

    def release(self) -> None:
        self._release.set()
        self._thread.join(10)


class PortalProcess:
    """`python -m portal serve` on the test database, in its own process."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._log = log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "portal", "serve", "--port", str(port)],
                                     env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            assert self.proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"{self.url}/livez", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 30, "the portal to start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self._log.close()


def portal_env(database_url: str, partner_url: str, data_dir: Path, port: int) -> dict[str, str]:
    # The same data dir for both processes: the same generated secrets, so the same token
    # verifies and the same API key is derived after the restart.
    return {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")},
            "DATABASE_URL": database_url, "PORTAL_DATA_DIR": str(data_dir), "SANDBOX": "true",
            "YCLIENTS_PARTNER_TOKEN": PARTNER_TOKEN, "YCLIENTS_API_URL": partner_url,
            "YCLIENTS_APP_ID": str(APP_ID), "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
            "LOG_LEVEL": "WARNING", "WEBHOOK_WORKER_INTERVAL_S": "3600"}


def stall_the_commit(db: Db) -> None:
    """The salon's switch to `active` waits on STALL_LOCK (held by the test) inside the
    activation transaction: after YClients' 301, before our commit."""
    db.execute(f"""CREATE FUNCTION stall_active() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN IF NEW.integration_status = 'active' THEN PERFORM pg_advisory_xact_lock({STALL_LOCK}); END IF;
                   RETURN NEW; END $$;
                   CREATE TRIGGER stall_active BEFORE UPDATE ON salons FOR EACH ROW EXECUTE FUNCTION stall_active();""")


def test_sigkill_between_the_301_and_our_commit_then_the_next_press_activates(database_url, db, tmp_path):
    accepted = threading.Event()

    async def partner_accepted() -> None:
        accepted.set()  # YClients recorded the install; its 301 is on its way

    with partner_server(hook=partner_accepted) as (purl, market):
        port = free_port()
        env = portal_env(database_url, purl, tmp_path / "data", port)
        first = PortalProcess(env, port, tmp_path / "portal-1.log")
        try:
            market.grant(4301)
            r = httpx.get(f"{first.url}/auth/yclients/redirect?{landing_query(PARTNER_TOKEN, 4301)}",
                          headers={"Accept": "application/json"})
            token = r.json()["token"]
            connect_whatsapp(db, 4301)
            stall_the_commit(db)
            held = HeldLock(database_url, STALL_LOCK)

            def press_activate() -> None:
                with contextlib.suppress(httpx.HTTPError):  # the process dies under this request
                    httpx.post(f"{first.url}/marketplace/activate", json={"token": token}, timeout=60)

            press = threading.Thread(target=press_activate, daemon=True)
            press.start()
            assert accepted.wait(20)
            # Our transaction is now waiting for the lock: past the 301, before the commit.
            waiting = wait_for(lambda: db.fetchval(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted",
                STALL_LOCK), what="the stalled commit")
            first.kill()
            held.release()
            # The killed process's session ends, its transaction rolled back.
            wait_for(lambda: not db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", waiting),
                     what="the killed session to end")
        finally:
            first.stop()
        assert 4301 in market.installed and install_calls(market) == 1
        row = db.fetchrow("SELECT integration_status, api_key_hash FROM salons")
        assert row["integration_status"] == "pending_whatsapp" and row["api_key_hash"] is None  # commit lost
        intent = db.fetchrow("SELECT finished_at, outcome FROM activation_intents")
        assert intent["finished_at"] is None  # ... but the intent survived it

        db.execute("DROP TRIGGER stall_active ON salons")
        second = PortalProcess(env, port, tmp_path / "portal-2.log")
        try:
            again = httpx.post(f"{second.url}/marketplace/activate", json={"token": token}, timeout=30)
        finally:
            second.stop()
    assert again.status_code == 200, again.text
    assert again.json()["success"] is True
    key = derive_api_key(load_settings(env, env_file=None).api_key_secret, 4301, 1)
    salon = db.fetchrow("SELECT integration_status, install_generation, api_key_hash FROM salons")
    assert (salon["integration_status"], salon["install_generation"]) == ("active", 1)
    assert market.installed[4301]["api_key"] == key  # one key: the one YClients got the first time
    assert salon["api_key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    # YClients' status said `active` and our intent was unfinished: completed, no second callback.
    assert install_calls(market) == 1 and len(market.installed) == 1
    assert db.fetchval("SELECT outcome FROM activation_intents") == "active"


@pytest.fixture
def staffed(make_settings):
    with partner_server() as (url, market):
        settings = make_settings(SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=url,
                                 YCLIENTS_APP_ID=str(APP_ID), YCLIENTS_TIMEOUT_S="1",
                                 WEBHOOK_WORKER_INTERVAL_S="0.05", **staff_env())
        with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
            yield client, settings, market


def test_an_install_we_never_attempted_is_already_installed_and_an_alert(staffed, db):
    client, settings, market = staffed
    token = ready_salon(client, settings, db, salon_id=4302, market=market)
    market.install(4302, "someone-elses-key-0000", ["https://elsewhere.example/hook"])

    r = client.post("/marketplace/activate", json={"token": token})

    assert r.status_code == 502 and r.json()["code"] == "PARTNER_ALREADY_INSTALLED"
    assert "already installed" in r.json()["message"] or "уже установлено" in r.json()["message"]
    assert market.installed[4302]["api_key"] == "someone-elses-key-0000"  # theirs, untouched
    assert db.fetchval("SELECT integration_status FROM salons") == "activation_failed"
    assert db.fetchval("SELECT outcome FROM activation_intents") == "foreign"
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'foreign_install_detected'") == 1
    sign_in(client)
    overview = client.get("/admin").text
    assert 'data-testid="foreign-4302"' in overview


def _open_intent_after_a_lost_answer(client, settings, db, market, salon_id: int) -> str:
    """A press whose partner call timed out: the outcome at YClients is unknown."""
    token = ready_salon(client, settings, db, salon_id=salon_id, market=market)
    market.fault, market.hang_s = "hang", 3
    r = client.post("/marketplace/activate", json={"token": token})
    market.fault = None
    assert r.status_code == 504
    intent = db.fetchrow("SELECT finished_at, last_error FROM activation_intents")
    assert intent["finished_at"] is None and intent["last_error"]
    return token


def test_unfinished_intents_are_listed_and_the_worker_completes_one_yclients_holds(staffed, db):
    client, settings, market = staffed
    _open_intent_after_a_lost_answer(client, settings, db, market, 4303)
    sign_in(client)
    assert 'data-testid="intent-4303"' in client.get("/admin").text
    # YClients did take the install (its answer was what got lost) ...
    market.install(4303, derive_api_key(settings.api_key_secret, 4303, 1), [])
    # ... and the intent is older than any activation still running.
    db.execute("UPDATE activation_intents SET started_at = now() - interval '1 hour'")
    wait_for(lambda: db.fetchval("SELECT outcome FROM activation_intents"), what="the reconcile")
    assert db.fetchval("SELECT outcome FROM activation_intents") == "active"
    salon = db.fetchrow("SELECT integration_status, install_generation, api_key_hash FROM salons")
    assert (salon["integration_status"], salon["install_generation"]) == ("active", 1)
    assert salon["api_key_hash"] == hashlib.sha256(derive_api_key(settings.api_key_secret, 4303, 1).encode()).hexdigest()
    payload = json.loads(db.fetchval("SELECT payload FROM marketplace_events WHERE event_type = 'integration_activated'"))
    assert payload == {"activation_mode": "reconciled", "install_generation": 1}
    assert 'data-testid="intent-4303"' not in client.get("/admin").text


def test_the_worker_releases_an_intent_yclients_never_got(staffed, db):
    client, settings, market = staffed
    _open_intent_after_a_lost_answer(client, settings, db, market, 4304)
    db.execute("UPDATE activation_intents SET started_at = now() - interval '1 hour'")
    wait_for(lambda: db.fetchval("SELECT outcome FROM activation_intents"), what="the reconcile")
    assert db.fetchval("SELECT outcome FROM activation_intents") == "released"
    assert db.fetchval("SELECT integration_status FROM salons") == "activation_failed"  # the owner may press again
    assert market.pending(4304)  # YClients still waits for the callback that never reached it
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'activation_released'") == 1


def test_a_fresh_unfinished_intent_is_left_to_its_activation(staffed, db):
    client, settings, market = staffed
    _open_intent_after_a_lost_answer(client, settings, db, market, 4305)
    calls = len(market.calls)
    # Several worker rounds pass (0.05 s apart); the intent is younger than the grace.
    wait_for(lambda: db.fetchval("SELECT now() - started_at > interval '0.5 seconds' FROM activation_intents"))
    assert db.fetchval("SELECT finished_at FROM activation_intents") is None
    assert len(market.calls) == calls  # YClients was not asked


def test_a_redirect_off_yclients_hosts_fails_the_activation_with_the_usual_sentence(make_settings, db):
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.helpers.servers import serve

    evil = Starlette(routes=[Route("/partner/callback/redirect", methods=["POST"], endpoint=lambda r: Response(
        status_code=301, headers={"Location": "https://phish.example/login"})), pending_status_route()])
    with serve(evil) as url:
        # This "YClients" answers the callback only: the landing cannot ask for the install status.
        settings = make_settings(SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=url,
                                 YCLIENTS_REDIRECT_HOSTS="yclients.com", LANDING_REQUIRE_PENDING="false")
        with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
            token = ready_salon(client, settings, db, salon_id=4306)
            r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 502 and r.json()["code"] == "PARTNER_BAD_RESPONSE"
    assert "phish" not in r.text
    assert db.fetchval("SELECT integration_status FROM salons") == "activation_failed"


def test_no_part_of_the_api_key_reaches_staff_or_the_admin_api(staffed, db):
    client, settings, market = staffed
    token = ready_salon(client, settings, db, salon_id=4307, market=market)
    assert client.post("/marketplace/activate", json={"token": token}).status_code == 200
    key = derive_api_key(settings.api_key_secret, 4307, 1)
    sign_in(client)
    page = client.get("/admin/salons/4307").text
    api = client.get("/marketplace/admin/salon/4307/status",
                     headers={"X-Api-Key": staff_env()["ADMIN_API_KEY"]})
    assert api.status_code == 200 and 'data-testid="salon-api-key">set' in page
    stored = json.dumps([dict(r) for r in db.fetch("SELECT * FROM salons")], default=str) + json.dumps(
        [r["payload"] for r in db.fetch("SELECT payload FROM marketplace_events")])
    for text in (page, api.text, stored):
        assert "api_key_prefix" not in text.replace('"api_key_prefix": null', "")
        assert key[3:10] not in text  # not the key, nor any part of it after "sk_"


def test_the_migration_strips_the_key_prefix_from_the_trail(database_url, db):
    db.execute("""INSERT INTO salons (yclients_salon_id, landed_at, api_key_prefix) VALUES (4308, now(), 'sk_abcd');
                  INSERT INTO marketplace_events (event_type, payload)
                  VALUES ('integration_activated', '{"api_key_prefix": "sk_abcd", "install_generation": 1}')""")
    db.execute("DELETE FROM schema_migrations WHERE version = '007_activation_intents.sql'")

    async def migrate() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()

    asyncio.run(migrate())
    assert json.loads(db.fetchval("SELECT payload FROM marketplace_events")) == {"install_generation": 1}
    assert db.fetchval("SELECT api_key_prefix FROM salons") is None
