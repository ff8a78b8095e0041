"""Activation under real concurrency and real faults: many requests, two instances, a
killed database session, the legacy path, the per-instance bound."""

import asyncio
import contextlib
import json
import re

import httpx

from portal.activation.activate import derive_api_key
from portal.app import create_app
from tests.activation.test_activation import connect_whatsapp
from tests.helpers.database import Db
from tests.helpers.landing import install_pending, landing_query
from tests.helpers.partner import APP_ID, PARTNER_TOKEN, install_calls, owner_installs, partner_server
from tests.helpers.servers import free_port, serve


@contextlib.contextmanager
def portals(make_settings, partner_url, count=1, **env):
    """`count` portal instances on one database, each under its own uvicorn."""
    with contextlib.ExitStack() as stack:
        urls = []
        for _ in range(count):
            port = free_port()
            settings = make_settings(SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=partner_url,
                                     YCLIENTS_APP_ID=str(APP_ID), PORTAL_BASE_URL=f"http://127.0.0.1:{port}", **env)
            urls.append(stack.enter_context(serve(create_app(settings), port=port)))
        yield urls, settings


async def token_for(http: httpx.AsyncClient, base: str, salon_id: int) -> str:
    install_pending(salon_id)
    r = await http.get(f"{base}/auth/yclients/redirect?{landing_query(PARTNER_TOKEN, salon_id)}",
                       headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()["token"]


async def activate_all(http, urls, token, n):
    return await asyncio.gather(*(http.post(f"{urls[i % len(urls)]}/marketplace/activate", json={"token": token})
                                  for i in range(n)))


def check_exactly_one(responses, market, db):
    statuses = [r.status_code for r in responses]
    assert all(s < 500 for s in statuses), statuses
    fresh = [r for r in responses if r.status_code == 200 and not r.json().get("already_active")]
    assert len(fresh) == 1
    others = [r for r in responses if r not in fresh]
    assert all((r.status_code == 409 and r.json()["code"] == "CONCURRENT_ACTIVATION" and r.headers["retry-after"] == "5")
               or (r.status_code == 200 and r.json()["already_active"]) for r in others)
    assert install_calls(market) == 1
    assert db.count("salons") == 1
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'integration_activated'") == 1
    assert db.fetchval("SELECT integration_status FROM salons") == "active"


async def test_fifty_concurrent_activations_call_the_partner_once(make_settings, db):
    with partner_server(delay_s=0.3) as (purl, market), portals(make_settings, purl) as (urls, _):
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=60)) as http:
            owner_installs(market, 5001)
            token = await token_for(http, urls[0], 5001)
            connect_whatsapp(db, 5001)
            responses = await activate_all(http, urls, token, 50)
    check_exactly_one(responses, market, db)
    assert sum(r.status_code == 409 for r in responses) >= 1  # the race really happened


async def test_two_instances_on_one_database_activate_once(make_settings, db):
    with partner_server(delay_s=0.3) as (purl, market), portals(make_settings, purl, count=2) as (urls, _):
        async with httpx.AsyncClient(timeout=30) as http:
            owner_installs(market, 5002)
            token = await token_for(http, urls[0], 5002)
            connect_whatsapp(db, 5002)
            responses = await activate_all(http, urls, token, 20)
    check_exactly_one(responses, market, db)


async def test_commit_lost_after_the_partner_accepted_then_the_next_attempt_ends_active(make_settings, db, pg_server):
    admin = Db(pg_server.admin_dsn)
    killed = []

    async def kill_our_session():
        # YClients accepted the install; now our database session dies before the commit.
        if killed:
            return  # only the first time
        pids = admin.fetch("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = 5003 AND granted")
        for row in pids:
            admin.fetchval("SELECT pg_terminate_backend($1)", row["pid"])
        killed.append(len(pids))

    with partner_server(hook=kill_our_session) as (purl, market), \
            portals(make_settings, purl, ACTIVATION_ATTEMPTS="1") as (urls, settings):
        async with httpx.AsyncClient(timeout=30) as http:
            owner_installs(market, 5003)
            token = await token_for(http, urls[0], 5003)
            connect_whatsapp(db, 5003)
            first = await http.post(f"{urls[0]}/marketplace/activate", json={"token": token})
            assert killed and killed[0] == 1
            assert first.status_code == 503 and first.json()["code"] == "DATABASE_UNAVAILABLE"
            row = db.fetchrow("SELECT integration_status, api_key_hash FROM salons")
            assert row["integration_status"] == "pending_whatsapp" and row["api_key_hash"] is None  # nothing half-written
            assert 5003 in market.installed  # but YClients holds the install
            second = await http.post(f"{urls[0]}/marketplace/activate", json={"token": token})
    assert second.status_code == 200 and second.json()["success"] is True
    assert db.fetchval("SELECT integration_status FROM salons") == "active"
    assert market.installed[5003]["api_key"] == derive_api_key(settings.api_key_secret, 5003, 1)
    # The killed try reached YClients; the next attempt reads its status (`active`, our intent
    # unfinished) and completes without a second callback, which the platform would refuse.
    assert install_calls(market) == 1


async def test_commit_lost_is_retried_within_the_same_request(make_settings, db, pg_server):
    admin = Db(pg_server.admin_dsn)
    kills = []

    async def kill_first_time():
        if not kills:
            kills.append(admin.fetch("SELECT pg_terminate_backend(pid) FROM pg_locks"
                                     " WHERE locktype = 'advisory' AND objid = 5004 AND granted"))

    with partner_server(hook=kill_first_time) as (purl, market), portals(make_settings, purl) as (urls, _):
        async with httpx.AsyncClient(timeout=30) as http:
            owner_installs(market, 5004)
            token = await token_for(http, urls[0], 5004)
            connect_whatsapp(db, 5004)
            r = await http.post(f"{urls[0]}/marketplace/activate", json={"token": token})
    assert kills and r.status_code == 200
    assert db.fetchval("SELECT integration_status FROM salons") == "active"
    assert install_calls(market) == 1  # the retry found the install active and ours: no second callback


async def test_legacy_path_behind_the_flag(make_settings, db):
    with partner_server() as (purl, market), portals(make_settings, purl, USE_TRANSACTION_ACTIVATION="false") as (urls, _):
        async with httpx.AsyncClient(timeout=30) as http:
            health = await http.get(f"{urls[0]}/marketplace/health", headers={"Authorization": "Bearer health-token-for-tests"})
            assert health.json()["featureFlags"]["useTransactionActivation"] is False
            owner_installs(market, 5005)
            token = await token_for(http, urls[0], 5005)
            connect_whatsapp(db, 5005)
            market.fault = "fail"
            failed = await http.post(f"{urls[0]}/marketplace/activate", json={"token": token})
            assert failed.status_code == 502
            row = db.fetchrow("SELECT integration_status, api_key_hash FROM salons")
            assert (row["integration_status"], row["api_key_hash"]) == ("activation_failed", None)
            market.fault = None
            ok = await http.post(f"{urls[0]}/marketplace/activate", json={"token": token})
    assert ok.status_code == 200 and db.fetchval("SELECT integration_status FROM salons") == "active"
    rows = db.fetch("SELECT payload FROM marketplace_events"
                    " WHERE event_type IN ('activation_failed', 'integration_activated') ORDER BY id")
    modes = [json.loads(r["payload"])["activation_mode"] for r in rows]
    assert modes == ["legacy", "legacy"]


async def test_activations_over_the_bound_get_503_while_health_stays_fast(make_settings, db):
    with partner_server(delay_s=1.5) as (purl, market), \
            portals(make_settings, purl, ACTIVATION_CONCURRENCY="1", ACTIVATION_QUEUE_WAIT_S="0.2") as (urls, _):
        async with httpx.AsyncClient(timeout=30) as http:
            owner_installs(market, 5006, 5007)
            tokens = [await token_for(http, urls[0], sid) for sid in (5006, 5007)]
            for sid in (5006, 5007):
                connect_whatsapp(db, sid)
            slow = asyncio.create_task(http.post(f"{urls[0]}/marketplace/activate", json={"token": tokens[0]}))
            await asyncio.sleep(0.3)
            over = await http.post(f"{urls[0]}/marketplace/activate", json={"token": tokens[1]})
            health = await http.get(f"{urls[0]}/marketplace/health")
            assert over.status_code == 503 and over.headers["retry-after"] == "2"
            assert over.json()["code"] == "ACTIVATION_BUSY"
            assert health.status_code == 200 and not slow.done()
            assert (await slow).status_code == 200
    assert db.fetchval("SELECT integration_status FROM salons WHERE yclients_salon_id = 5007") == "pending_whatsapp"


async def owner_session(base: str, salon_id: int) -> httpx.AsyncClient:
    """An owner's browser after the landing: it holds the session cookie."""
    owner = httpx.AsyncClient(base_url=base, timeout=30, headers={"Origin": base})
    install_pending(salon_id)
    r = await owner.get(f"/auth/yclients/redirect?{landing_query(PARTNER_TOKEN, salon_id)}")
    assert r.status_code in (200, 303), r.text
    return owner


async def test_a_busy_answer_counts_down_and_posts_again_by_itself_with_jitter(make_settings, db):
    with partner_server(delay_s=2.0) as (purl, market), \
            portals(make_settings, purl, ACTIVATION_CONCURRENCY="1", ACTIVATION_QUEUE_WAIT_S="0.1") as (urls, _):
        async with httpx.AsyncClient(timeout=30) as http:
            token = await token_for(http, urls[0], 5010)
            owner = await owner_session(urls[0], 5011)
            for sid in (5010, 5011):
                connect_whatsapp(db, sid)
            slow = asyncio.create_task(http.post(f"{urls[0]}/marketplace/activate", json={"token": token}))
            while install_calls(market) == 0:  # the one slot is taken once the partner is called
                await asyncio.sleep(0.01)
            panels = [await owner.post("/marketplace/activate", headers={"HX-Request": "true"}) for _ in range(4)]
            no_js = await owner.post("/marketplace/activate")
            assert (await slow).status_code == 200
            await owner.aclose()
    delays = []
    for r in panels:
        assert r.status_code == 200 and 'data-state="busy"' in r.text, r.text
        trigger = re.search(r'hx-post="/marketplace/activate" hx-trigger="load delay:(\d+)ms"', r.text)
        assert trigger, r.text
        delays.append(int(trigger.group(1)))
        countdown = re.search(r'data-countdown="(\d+)"', r.text)
        assert countdown and int(countdown.group(1)) == -(-delays[-1] // 1000)
        assert 'data-testid="activate"' in r.text  # the owner may still press it
    # Retry-After (2 s) stretched by 1..2, differently for each answer: the burst spreads out.
    assert all(2000 <= d <= 4000 for d in delays) and len(set(delays)) > 1
    # Without JS nothing would count down: the sentence and a plain form button.
    assert no_js.status_code == 503 and 'data-testid="activation-error"' in no_js.text
    assert 'data-state="busy"' not in no_js.text and 'action="/marketplace/activate"' in no_js.text
    assert db.fetchval("SELECT integration_status FROM salons WHERE yclients_salon_id = 5011") == "pending_whatsapp"
