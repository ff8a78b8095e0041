"""Gateway events first, polling as a safety net, every instance in step.

Real PostgreSQL, a fake WAHA over real HTTP that delivers documented, signed `session.status`
webhooks, and two real portal instances on one database where the claim is about instances.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.testclient import TestClient

from portal.app import create_app
from tests.helpers.landing import land
from tests.helpers.servers import free_port, serve

HX = {"HX-Request": "true"}
HOOK_KEY = "hook-key-for-events-tests"


def waha_env(url: str, **extra: str) -> dict[str, str]:
    return {"WHATSAPP_GATEWAY": "waha", "WAHA_URL": url, "WAHA_API_KEY": "waha-key",
            "WAHA_WEBHOOK_HMAC_KEY": HOOK_KEY, **extra}


def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait for a condition that another process or thread makes true (polled at the source)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def state_of(client: TestClient) -> str:
    import re

    r = client.get("/onboarding/whatsapp/status", headers=HX)
    found = re.search(r'data-state="([a-z_]+)"', r.text)
    return found.group(1) if found else f"<{r.status_code}>"


def gateway_calls(state, session: str) -> list[str]:
    return [p for p in state.paths() if session in p and not p.startswith("POST /api/sessions ")]


def test_with_events_polls_do_not_ask_the_gateway_until_the_safety_poll_is_due(make_settings, waha):
    url, state = waha
    settings = make_settings(**waha_env(url, WHATSAPP_SAFETY_POLL_S="3600"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=701)
        assert 'data-state="awaiting_scan"' in c.post("/onboarding/whatsapp/start", headers=HX).text
        state.requests.clear()
        for _ in range(50):
            assert state_of(c) == "awaiting_scan"
        assert gateway_calls(state, "salon-701") == []  # 50 polls, not one gateway call


def test_a_missed_event_is_caught_by_the_safety_poll(make_settings, waha):
    url, state = waha
    settings = make_settings(**waha_env(url, WHATSAPP_SAFETY_POLL_S="0.5"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=702)
        c.post("/onboarding/whatsapp/start", headers=HX)
        state.set_status("salon-702", "WORKING")  # and no webhook arrives
        state.set_me("salon-702", "79160000702")
        until(lambda: state_of(c) == "connected")
        reads = [p for p in state.paths() if p == "GET /api/sessions/salon-702"]
        assert 1 <= len(reads) <= 3  # the safety net asked, rarely


def test_a_poll_that_changes_nothing_touches_no_database(make_settings, waha, db):
    url, _ = waha
    settings = make_settings(**waha_env(url, WHATSAPP_SAFETY_POLL_S="3600"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=703)
        r = c.post("/onboarding/whatsapp/start", headers=HX)
        version = r.text.split("/onboarding/whatsapp/status?v=")[1].split('"')[0]
        assert c.get(f"/onboarding/whatsapp/status?v={version}", headers=HX).status_code == 204  # warm
        runtime = c.app_state["runtime"]
        real_pool, acquired = runtime.pool, []

        class CountingPool:  # every database round trip starts with an acquire
            def __getattr__(self, name):
                if name == "acquire":
                    acquired.append(name)
                return getattr(real_pool, name)

        runtime.pool = CountingPool()
        try:
            for _ in range(20):
                assert c.get(f"/onboarding/whatsapp/status?v={version}", headers=HX).status_code == 204
        finally:
            runtime.pool = real_pool
        assert acquired == []
        # A changed link (announced by its trigger) is read from the database: once.
        db.execute("UPDATE whatsapp_links SET status = 'linking', qr = NULL")
        runtime.pool = CountingPool()
        try:
            until(lambda: state_of(c) == "linking")
            assert c.get("/onboarding/whatsapp/status", headers=HX).status_code == 200
        finally:
            runtime.pool = real_pool
        assert acquired == ["acquire"]


def two_instances(make_settings, url: str, **env: str):
    """Two real portals on one database, each served on its own port."""
    ports = free_port(), free_port()
    apps = []
    for port in ports:
        settings = make_settings(**waha_env(url, PORTAL_BASE_URL=f"http://127.0.0.1:{port}", **env))
        apps.append((settings, create_app(settings), port))
    return apps


def test_a_webhook_on_one_instance_reaches_the_owner_polling_the_other(make_settings, waha):
    url, state = waha
    (settings, app_a, port_a), (_, app_b, port_b) = two_instances(make_settings, url, WHATSAPP_SAFETY_POLL_S="3600")
    with serve(app_a, port=port_a) as base_a, serve(app_b, port=port_b) as base_b, \
            TestClient(app_a, base_url=base_a) as a:
        land(a, settings.partner_token, salon_id=704)
        a.post("/onboarding/whatsapp/start", headers=HX)
        assert state_of(a) == "awaiting_scan"  # A's memory now holds the waiting link
        state.set_status("salon-704", "WORKING")
        state.set_me("salon-704", "79160000704")
        # WAHA's webhook is configured with A's URL; deliver this one to B instead, as a
        # load balancer would.
        [(_, body, headers)] = state.webhook_delivery("salon-704")
        import httpx

        assert httpx.post(f"{base_b}/webhook/whatsapp", content=body, headers=headers).status_code == 200
        until(lambda: state_of(a) == "connected", timeout_s=2.5)


def test_a_dropped_listener_reconnects_and_the_instance_catches_up(make_settings, waha, db):
    url, _ = waha
    settings = make_settings(**waha_env(url, WHATSAPP_SAFETY_POLL_S="3600"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=705)
        c.post("/onboarding/whatsapp/start", headers=HX)
        assert state_of(c) == "awaiting_scan"
        notifications = c.app_state["runtime"].notifications
        before = notifications.reconnects
        pid = notifications.backend_pid
        db.fetchval("SELECT pg_terminate_backend($1)", pid)
        # While the listener is away, the link changes (another instance, a staff action).
        db.execute("UPDATE whatsapp_links SET status = 'connected', phone = '79160000705', qr = NULL")
        until(lambda: notifications.reconnects > before)
        assert notifications.backend_pid not in (None, pid)
        assert state_of(c) == "connected"


def test_a_qr_about_to_expire_is_fetched_anew_without_waiting_for_the_safety_poll(make_settings, waha, db):
    url, state = waha
    settings = make_settings(**waha_env(url, WHATSAPP_SAFETY_POLL_S="3600"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=706)
        c.post("/onboarding/whatsapp/start", headers=HX)
        state.sessions["salon-706"].qr = "2@rotated,by,the,gateway"
        # Our QR nears its end (the change to last_error is announced, so memory lets go).
        db.execute("UPDATE whatsapp_links SET qr_expires_at = now() + interval '3 seconds', last_error = 'x'")
        until(lambda: "2@rotated,by,the,gateway" in c.get("/onboarding/whatsapp/status", headers=HX).text)
        assert [p for p in state.paths() if "auth/qr" in p]  # fetched from the QR endpoint


def test_an_event_delivered_twice_is_taken_once_and_an_old_one_is_refused(make_settings, waha, db):
    """WAHA gives every event an `id` and a `timestamp` (waha-docs how-to/events) and delivers
    again by its retries policy: a repeat costs no gateway call; an event older than the
    portal's memory of ids cannot be told from a replay, so it is refused (a 4xx: not resent)."""
    import json

    url, state = waha
    settings = make_settings(**waha_env(url, WHATSAPP_SAFETY_POLL_S="3600"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=704)
        c.post("/onboarding/whatsapp/start", headers=HX)
        webhooks = state.sessions["salon-704"].config["webhooks"]
        assert webhooks[0]["retries"] == {"policy": "exponential", "delaySeconds": 2, "attempts": 6}
        state.set_status("salon-704", "WORKING")
        state.set_me("salon-704", "79160000704")
        [(_, body, headers)] = state.webhook_delivery("salon-704")
        state.requests.clear()
        first = c.post("/webhook/whatsapp", content=body, headers=headers)
        assert first.status_code == 200 and first.json() == {"ok": True}
        again = c.post("/webhook/whatsapp", content=body, headers=headers)
        assert again.status_code == 200 and again.json() == {"duplicate": True}
        assert state.paths().count("GET /api/sessions/salon-704") == 1
        event_id = json.loads(body)["id"]
        assert db.fetchval("SELECT count(*) FROM gateway_events_seen WHERE event_id = $1", f"waha:{event_id}") == 1
        # Two days old, correctly signed, never seen: refused without a gateway call.
        old = json.loads(body) | {"id": "evt_old", "timestamp": int((time.time() - 2 * 86400) * 1000)}
        old_body = json.dumps(old).encode()
        import hashlib
        import hmac

        signed = {"X-Webhook-Hmac": hmac.new(HOOK_KEY.encode(), old_body, hashlib.sha512).hexdigest(),
                  "X-Webhook-Hmac-Algorithm": "sha512", "Content-Type": "application/json"}
        stale = c.post("/webhook/whatsapp", content=old_body, headers=signed)
        assert stale.status_code == 409 and stale.json()["code"] == "STALE_EVENT"
        assert state.paths().count("GET /api/sessions/salon-704") == 1
