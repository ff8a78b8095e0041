"""One breaker for the whole deployment: real PostgreSQL, two real portal instances on one
database, a fake WAHA over HTTP. The in-process rules are covered by test_breaker.py (fake
clock); here the claims are about instances: what one decides, the other obeys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.platform.database import open_database
from portal.platform.notifications import Notifications
from portal.whatsapp.breaker import BreakerState, CircuitOpen, Rules
from portal.whatsapp.breaker_store import BreakerStore
from portal.whatsapp.shared_breaker import SharedBreaker
from tests.helpers.landing import land
from tests.helpers.staff import API_KEY, sign_in, staff_env

HX = {"HX-Request": "true"}
KEY = {"X-API-Key": API_KEY}


def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> float:
    """Wait for a condition another thread makes true; returns how long it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)
    return time.monotonic() - started


def instance(make_settings, url: str, **env: str) -> TestClient:
    settings = make_settings(**staff_env(), WHATSAPP_GATEWAY="waha", WAHA_URL=url, WAHA_API_KEY="waha-key",
                             WAHA_WEBHOOK_HMAC_KEY="hook-key", LOGIN_RATE_LIMIT="1000/minute", **env)
    return TestClient(create_app(settings), base_url="http://127.0.0.1:8000")


def start(client: TestClient, partner_token: str, salon_id: int) -> str:
    land(client, partner_token, salon_id=salon_id)
    r = client.post("/onboarding/whatsapp/start", headers=HX)
    assert r.status_code == 200
    return r.text


def breaker(client: TestClient) -> SharedBreaker:
    return client.app_state["runtime"].breaker


def test_opened_on_a_b_rejects_without_calling_the_gateway(make_settings, waha):
    url, state = waha
    env = {"QR_BREAKER_FAILURE_THRESHOLD": "2", "QR_BREAKER_RESET_TIMEOUT_S": "600"}
    with instance(make_settings, url, **env) as a, instance(make_settings, url, **env) as b:
        token = a.app_state["runtime"].settings.partner_token
        state.fail_with = 500
        start(a, token, 801)
        start(a, token, 802)
        assert breaker(a).stats()["state"] == "open"
        state.fail_with = None
        state.requests.clear()
        page = start(b, token, 803)  # B decides on the shared row, not on its own memory
        assert 'data-state="busy"' in page
        assert state.requests == []
        assert breaker(b).stats()["total_rejections"] == 1


def test_staff_reset_on_b_closes_a_within_a_second(make_settings, waha, db):
    url, _ = waha
    with instance(make_settings, url) as a, instance(make_settings, url) as b:
        sign_in(a)
        a.post("/admin/system/breaker", data={"action": "force_open"})
        until(lambda: breaker(b).state is BreakerState.OPEN, timeout_s=1.0)
        assert breaker(a).state is BreakerState.OPEN
        r = b.post("/marketplace/admin/circuit-breaker/reset", headers=KEY)
        took = until(lambda: breaker(a).state is BreakerState.CLOSED, timeout_s=1.0)
        assert took < 1.0
        body = r.json()
        assert body["stats"]["state"] == "closed"
        # The reset waited for the acknowledgements: both instances had applied it.
        assert body["message"] == "Breaker reset: closed. Seen by 2 of 2 instances running."
        assert (body["stats"]["seen_by"], body["stats"]["instances_running"]) == (2, 2)
        page = a.get("/admin/system").text
        assert 'data-testid="breaker-state" data-state="closed">' in page
        assert "seen by 2 of 2 instances running" in page
        # And an owner on A gets a QR again: A's own decision reads the shared row.
        token = a.app_state["runtime"].settings.partner_token
        assert 'data-state="awaiting_scan"' in start(a, token, 804)
    # Both instances left on shutdown: none is counted as running any more.
    assert db.fetchval("SELECT count(*) FROM portal_instances") == 0


async def two_breakers(database_url: str, rules: Rules):
    """Two instances' breakers, each on its own pool (its own connections), one database."""
    from portal.platform.settings import load_settings

    settings = load_settings({"DATABASE_URL": database_url, "HEALTH_CHECK_TOKEN": "x"}, env_file=None)
    stack = []
    for i in range(2):
        cm = open_database(settings)
        database = await cm.__aenter__()
        stack.append(cm)
        shared = SharedBreaker(BreakerStore(database.pool, "qrGeneration", f"inst-{i}", None), rules)
        await shared.start()
        stack.append(shared)
    return stack


async def close(stack) -> None:
    for item in reversed(stack):
        if isinstance(item, SharedBreaker):
            await item.stop()
        else:
            await item.__aexit__(None, None, None)


async def open_then_half_open(a: SharedBreaker, rules: Rules) -> None:
    async def fail() -> str:
        raise RuntimeError("gateway down")

    for _ in range(rules.failure_threshold):
        with pytest.raises(RuntimeError):
            await a.call(fail)
    assert a.state is BreakerState.OPEN
    await asyncio.sleep(rules.reset_timeout_s)  # the breaker's own timeout is what is tested


async def test_half_open_admits_at_most_the_threshold_in_total_across_instances(database_url):
    rules = Rules(failure_threshold=1, reset_timeout_s=0.2, call_timeout_s=5.0, success_threshold=2)
    stack = await two_breakers(database_url, rules)
    a, b = stack[1], stack[3]
    try:
        await open_then_half_open(a, rules)
        release, started = asyncio.Event(), []

        async def trial() -> str:
            started.append(1)
            await release.wait()
            return "qr"

        async def attempt(breaker: SharedBreaker) -> str:
            try:
                return await breaker.call(trial)
            except CircuitOpen:
                return "refused"

        # 40 callers at once, 20 per instance, each instance on its own connections.
        tasks = [asyncio.create_task(attempt(x)) for _ in range(20) for x in (a, b)]
        while sum(t.done() for t in tasks) < len(tasks) - len(started) or len(started) < 2:
            await asyncio.sleep(0.01)  # every refusal answered and both slots taken
        assert len(started) == rules.success_threshold
        release.set()
        results = await asyncio.gather(*tasks)
        assert results.count("qr") == 2 and results.count("refused") == 38
        await a.reload()  # (no listener here: the app tests cover announcements)
        await b.reload()
        assert a.state is BreakerState.CLOSED and b.state is BreakerState.CLOSED
    finally:
        await close(stack)


async def test_a_trial_claim_of_a_vanished_instance_expires(database_url):
    rules = Rules(failure_threshold=1, reset_timeout_s=0.2, call_timeout_s=0.3, success_threshold=2,
                  claim_grace_s=0.5)
    stack = await two_breakers(database_url, rules)
    a, b = stack[1], stack[3]
    try:
        await open_then_half_open(a, rules)
        store = a._store  # A claims both trial slots, then dies before giving them back
        for claim in ("dead-1", "dead-2"):
            await store.change(lambda cur, n, c=claim: rules.admit(rules.settle(cur, n, n), n, c))
        claimed_at = time.monotonic()
        calls = []

        async def ok() -> str:
            calls.append(1)
            return "qr"

        with pytest.raises(CircuitOpen) as refused:
            await b.call(ok)
        assert refused.value.retry_after == b.HALF_OPEN_RETRY_S and calls == []
        while True:  # B is admitted once the claims expire (0.8 s), not before
            try:
                await b.call(ok)
                break
            except CircuitOpen:
                assert time.monotonic() - claimed_at < 5
                await asyncio.sleep(0.05)
        waited = time.monotonic() - claimed_at
        assert 0.6 <= waited < 2.0, waited
        assert calls == [1]
    finally:
        await close(stack)


async def test_totals_are_the_deployments(database_url):
    rules = Rules(failure_threshold=5, reset_timeout_s=30.0, call_timeout_s=5.0, success_threshold=1)
    stack = await two_breakers(database_url, rules)
    a, b = stack[1], stack[3]

    async def ok() -> str:
        return "qr"

    async def fail() -> str:
        raise RuntimeError("gateway down")

    try:
        for _ in range(3):
            await a.call(ok)
        for _ in range(2):
            with pytest.raises(RuntimeError):
                await b.call(fail)
        # Before a heartbeat each sees its own counts; after, everyone's.
        assert (a.stats()["total_calls"], b.stats()["total_calls"]) == (3, 2)
        await a.share_totals()
        await b.share_totals()
        await a.share_totals()
        for breaker in (a, b):
            stats = breaker.stats()
            assert (stats["total_calls"], stats["total_failures"], stats["total_rejections"]) == (5, 2, 0)
        await a.call(ok)  # counted at once locally, shared at the next heartbeat
        assert a.stats()["total_calls"] == 6 and b.stats()["total_calls"] == 5
    finally:
        await close(stack)  # a stopping instance shares what it counted last
    fresh = await two_breakers(database_url, rules)
    try:
        assert fresh[1].stats()["total_calls"] == 6 and fresh[1].stats()["total_failures"] == 2
    finally:
        await close(fresh)


async def test_waiting_for_every_instance_listens_instead_of_polling(database_url):
    rules = Rules(failure_threshold=1, reset_timeout_s=30.0, call_timeout_s=5.0, success_threshold=1)
    stack = await two_breakers(database_url, rules)
    a, b = stack[1], stack[3]
    listener = Notifications(database_url)
    listener.subscribe("breaker_seen", a.acknowledged)
    await listener.start()
    reads = []
    real_seen = a._store.seen

    async def counted_seen(version: int, recent_s: float):
        reads.append(version)
        return await real_seen(version, recent_s)

    a._store.seen = counted_seen
    try:
        version = await a.force_open()  # b is not told here: it has no listener
        waiting = asyncio.create_task(a.wait_seen(version, within_s=30.0))
        while not reads:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)  # nothing happens meanwhile: a poll would have read ~6 times
        assert len(reads) == 1 and not waiting.done()
        started = time.monotonic()
        await b.reload()  # b applies the version and says so
        assert await waiting == (2, 2)
        assert time.monotonic() - started < 2.0 and len(reads) == 2
        # With nobody announcing anything, the wait ends at its bound after one more read.
        reads.clear()
        version = await a.reset()
        assert await a.wait_seen(version, within_s=0.3) == (1, 2) and len(reads) == 2
    finally:
        await listener.stop()
        await close(stack)
