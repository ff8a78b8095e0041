"""Stopping a real `portal serve` process on real PostgreSQL, as a deploy or a scale-down does.

- SIGTERM while an activation waits on a slow partner: the activation finishes (the owner
  gets success, the salon is active, YClients got one call), then the process ends.
- SIGTERM while the webhook worker is inside a delivery: the delivery is finished and its
  lease released before the process exits; nothing new is taken.
- SIGKILL inside a delivery: its transaction is lost, its lease runs out, and the next
  instance finishes it exactly once.

A delivery is held "inside" by a row lock the test takes on the salon: the worker's write
waits on it (seen in pg_stat_activity), and the test lets go when it chooses.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.helpers.landing import install_pending, landing_query
from tests.helpers.partner import APP_ID, PARTNER_TOKEN, install_calls, partner_server
from tests.helpers.portal_process import PortalProcess, portal_process
from tests.helpers.servers import free_port
from tests.yclients_webhooks.test_yclients_webhooks import wait_for

SALON = 500001
# uvicorn exits a graceful shutdown by raising the signal it caught again (so a supervisor
# sees "terminated by SIGTERM"): that is the clean end here, not a crash.
CLEAN_EXIT = -signal.SIGTERM


class LockHolder:
    """One PostgreSQL session kept open across test steps (its own event loop in a thread)."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.conn: asyncpg.Connection = self.call(asyncpg.connect(dsn))

    def call(self, coro):
        future: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=20)

    def lock_salon(self, yclients_salon_id: int) -> None:
        self.call(self.conn.execute("BEGIN"))
        self.call(self.conn.execute("SELECT 1 FROM salons WHERE yclients_salon_id = $1 FOR UPDATE",
                                    yclients_salon_id))

    def release(self) -> None:
        self.call(self.conn.execute("COMMIT"))

    def close(self) -> None:
        self.call(self.conn.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def holder(database_url) -> Iterator[LockHolder]:
    held = LockHolder(database_url)
    yield held
    held.close()


def portal_env(database_url: str, tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "PORTAL_DATA_DIR": str(tmp_path / "data"),
            "PORTAL_BASE_URL": f"http://127.0.0.1:{port}", "SANDBOX": "true",
            "YCLIENTS_PARTNER_TOKEN": PARTNER_TOKEN, "YCLIENTS_APP_ID": str(APP_ID),
            "WEBHOOK_WORKER_INTERVAL_S": "0.1", **extra}


def land(portal: PortalProcess, salon_id: int = SALON) -> str:
    install_pending(salon_id)  # in a fake YClients the test serves, and in the portal's own sandbox
    httpx.get(f"{portal.url}/sandbox/install/{salon_id}", timeout=10)
    r = httpx.get(f"{portal.url}/auth/yclients/redirect?{landing_query(PARTNER_TOKEN, salon_id)}",
                  headers={"Accept": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["token"]


def waiting_on_the_lock(db, fragment: str) -> bool:
    return bool(db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'", fragment))


def insert_freeze(db, key: str = "freeze-1") -> int:
    return db.fetchval(
        "INSERT INTO webhook_deliveries (idempotency_key, yclients_salon_id, event, install_generation, status,"
        " expires_at) VALUES ($1, $2, 'freeze', 1, 'pending', now() + interval '1 day') RETURNING id", key, SALON)


def frozen_events(db) -> int:
    return db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'frozen'")


def test_sigterm_lets_an_activation_waiting_on_a_slow_partner_finish(database_url, db, tmp_path):
    from tests.activation.test_activation import connect_whatsapp

    reached, release = threading.Event(), threading.Event()

    async def slow_partner() -> None:  # the install is accepted; the answer waits for the test
        reached.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)

    port = free_port()
    with partner_server(hook=slow_partner) as (partner_url, market), \
            portal_process(portal_env(database_url, tmp_path, port, YCLIENTS_API_URL=partner_url),
                           port, tmp_path) as portal:
        market.grant(SALON)
        token = land(portal)
        connect_whatsapp(db, SALON)
        answer: dict = {}
        owner = threading.Thread(target=lambda: answer.update(r=httpx.post(
            f"{portal.url}/marketplace/activate", json={"token": token}, timeout=60)))
        owner.start()
        assert reached.wait(20), "the activation never reached the partner"

        portal.signal(signal.SIGTERM)
        portal.wait_until_not_listening()  # the shutdown has begun, the activation is in flight
        assert portal.process.poll() is None
        release.set()
        owner.join(30)
        assert portal.process.wait(30) == CLEAN_EXIT

    r = answer["r"]
    assert r.status_code == 200 and r.json()["success"] is True, r.text
    assert db.fetchval("SELECT integration_status FROM salons WHERE yclients_salon_id = $1", SALON) == "active"
    assert install_calls(market) == 1
    assert not [line for line in portal.log_lines() if line["level"] == "error"]


def test_sigterm_finishes_the_delivery_in_hand_and_releases_its_lease(database_url, db, tmp_path, holder):
    port = free_port()
    with portal_process(portal_env(database_url, tmp_path, port), port, tmp_path) as portal:
        land(portal)
        holder.lock_salon(SALON)
        delivery_id = insert_freeze(db)
        assert wait_for(lambda: waiting_on_the_lock(db, "integration_status = 'frozen'"), timeout=20)

        portal.signal(signal.SIGTERM)
        portal.wait_until_not_listening()
        assert wait_for(lambda: "Waiting for application shutdown." in portal.log_path.read_text())
        # The app is shutting down and the delivery is still in hand: the process must wait
        # for it (a bounded wait, since what is checked is that nothing happens).
        with pytest.raises(subprocess.TimeoutExpired):
            portal.process.wait(1.0)
        assert waiting_on_the_lock(db, "integration_status = 'frozen'")
        holder.release()
        assert portal.process.wait(30) == CLEAN_EXIT

    row = db.fetchrow("SELECT status, attempts, locked_until FROM webhook_deliveries WHERE id = $1", delivery_id)
    assert (row["status"], row["attempts"], row["locked_until"]) == ("done", 1, None)
    assert db.fetchval("SELECT integration_status FROM salons WHERE yclients_salon_id = $1", SALON) == "frozen"
    assert frozen_events(db) == 1


def test_a_delivery_cut_by_sigkill_is_finished_once_by_the_next_instance(database_url, db, tmp_path, holder):
    port = free_port()
    with portal_process(portal_env(database_url, tmp_path, port), port, tmp_path, name="first") as first:
        land(first)
        holder.lock_salon(SALON)
        delivery_id = insert_freeze(db)
        assert wait_for(lambda: waiting_on_the_lock(db, "integration_status = 'frozen'"), timeout=20)
        first.signal(signal.SIGKILL)
        first.process.wait(10)
    holder.release()  # the dead instance's write goes ahead, in a transaction nobody commits

    row = db.fetchrow("SELECT status, attempts, locked_until > now() AS leased FROM webhook_deliveries"
                      " WHERE id = $1", delivery_id)
    assert (row["status"], row["attempts"], row["leased"]) == ("processing", 1, True)
    assert wait_for(lambda: db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND query LIKE '%integration_status = ''frozen''%' AND pid <> pg_backend_pid()") == 0, timeout=20)
    assert db.fetchval("SELECT integration_status FROM salons WHERE yclients_salon_id = $1", SALON) != "frozen"
    # The lease (LEASE_S, 60 s) runs out: moved into the past rather than waited for.
    db.execute("UPDATE webhook_deliveries SET locked_until = now() - interval '1 second' WHERE id = $1", delivery_id)

    port = free_port()
    with portal_process(portal_env(database_url, tmp_path, port), port, tmp_path, name="second"):
        assert wait_for(lambda: db.fetchval(
            "SELECT status FROM webhook_deliveries WHERE id = $1", delivery_id) == "done", timeout=20)
    row = db.fetchrow("SELECT attempts, locked_until FROM webhook_deliveries WHERE id = $1", delivery_id)
    assert (row["attempts"], row["locked_until"]) == (2, None)
    assert db.fetchval("SELECT integration_status FROM salons WHERE yclients_salon_id = $1", SALON) == "frozen"
    assert frozen_events(db) == 1
