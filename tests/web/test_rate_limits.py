"""Rate limits: counting, headers, shared counts in Redis or PostgreSQL, fall-back to memory and recovery."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from types import SimpleNamespace

import pytest

from portal.platform.database import open_database
from portal.platform.settings import load_settings
from portal.web.rate_limits import Decision, RateLimits, client_key, name_key
from tests.helpers.clock import FakeClock
from tests.helpers.redis_server import redis_url, running_redis  # noqa: F401  (fixture)
from tests.helpers.servers import free_port


@pytest.fixture
async def make_limits():
    """Build RateLimits with a key prefix unique to this test; close them all at the end."""
    built: list[RateLimits] = []
    prefix = f"portal-test-{uuid.uuid4().hex}"

    def build(limits: dict[str, str], *, redis_url: str | None = None, **kwargs) -> RateLimits:
        kwargs.setdefault("key_prefix", prefix)
        rate_limits = RateLimits(redis_url=redis_url, limits=limits, **kwargs)
        built.append(rate_limits)
        return rate_limits

    yield build
    for rate_limits in built:
        await rate_limits.aclose()


@pytest.fixture
async def pools(database_url):
    """Pools on this test's database, one per simulated instance (each its own connections)."""
    async with contextlib.AsyncExitStack() as stack:
        settings = load_settings({"DATABASE_URL": database_url, "HEALTH_CHECK_TOKEN": "x"}, env_file=None)

        async def open_pool():
            return (await stack.enter_async_context(open_database(settings))).pool

        yield open_pool


def closed_port() -> int:
    # Bound then released: nothing listens there, so connecting is refused.
    return free_port()


# --- memory -------------------------------------------------------------------------------


async def test_memory_allows_up_to_the_limit_then_refuses_with_headers(make_limits):
    rl = make_limits({"admin": "3/minute"})
    assert rl.backend == "memory" and rl.degraded is False

    answers = [await rl.hit("admin", "10.0.0.1") for _ in range(3)]
    assert [d.allowed for d in answers] == [True, True, True]
    assert [d.remaining for d in answers] == [2, 1, 0]
    first = answers[0].headers()
    assert first["RateLimit-Policy"] == "3;w=60"
    assert first["RateLimit"].startswith("limit=3, remaining=2, reset=")
    assert "Retry-After" not in first

    refused = await rl.hit("admin", "10.0.0.1")
    assert refused.allowed is False
    assert refused.limit == 3 and refused.remaining == 0 and refused.window_s == 60
    assert 1 <= refused.reset_after <= 60
    headers = refused.headers()
    assert headers["Retry-After"] == str(refused.reset_after)
    assert headers["RateLimit-Policy"] == "3;w=60"
    assert headers["RateLimit"] == f"limit=3, remaining=0, reset={refused.reset_after}"


async def test_separate_keys_and_scopes_are_counted_separately(make_limits):
    rl = make_limits({"login_client": "2/minute", "login_user": "2/minute"})
    for _ in range(2):
        assert (await rl.hit("login_client", "10.0.0.1")).allowed
    assert not (await rl.hit("login_client", "10.0.0.1")).allowed

    other_key = await rl.hit("login_client", "10.0.0.2")
    assert other_key.allowed and other_key.remaining == 1
    other_scope = await rl.hit("login_user", "10.0.0.1")
    assert other_scope.allowed and other_scope.remaining == 1


async def test_two_memory_instances_do_not_share_counts(make_limits):
    one = make_limits({"owner": "2/minute"})
    two = make_limits({"owner": "2/minute"})
    for _ in range(2):
        assert (await one.hit("owner", "salon-1")).allowed
    assert not (await one.hit("owner", "salon-1")).allowed

    fresh = await two.hit("owner", "salon-1")
    assert fresh.allowed and fresh.remaining == 1


async def test_limit_and_window_follow_the_limit_string(make_limits):
    rl = make_limits({"webhook": "120 per 2 minutes"})
    decision = await rl.hit("webhook", "waha")
    assert (decision.limit, decision.window_s, decision.remaining) == (120, 120, 119)
    assert decision.headers()["RateLimit-Policy"] == "120;w=120"


@pytest.mark.parametrize("text", ["lots", "", "1/second;5/minute", "0/minute"])
def test_a_bad_limit_string_raises_naming_the_scope(text):
    with pytest.raises(ValueError, match="login_user"):
        RateLimits(redis_url=None, limits={"admin": "100/minute", "login_user": text})


def test_a_bad_redis_url_is_refused():
    with pytest.raises(ValueError, match="REDIS_URL"):
        RateLimits(redis_url="http://127.0.0.1:6379", limits={"admin": "1/minute"})


async def test_an_unknown_scope_is_a_programming_error(make_limits):
    rl = make_limits({"admin": "1/minute"})
    with pytest.raises(ValueError, match="webhook"):
        await rl.hit("webhook", "source")


def test_decision_headers():
    allowed = Decision(allowed=True, limit=100, remaining=99, reset_after=60, window_s=60)
    assert allowed.headers() == {"RateLimit-Policy": "100;w=60",
                                 "RateLimit": "limit=100, remaining=99, reset=60"}
    refused = Decision(allowed=False, limit=100, remaining=0, reset_after=37, window_s=60)
    assert refused.headers() == {"RateLimit-Policy": "100;w=60",
                                 "RateLimit": "limit=100, remaining=0, reset=37",
                                 "Retry-After": "37"}


# --- keys ---------------------------------------------------------------------------------


def _request(host: str | None):
    return SimpleNamespace(client=SimpleNamespace(host=host) if host is not None else None,
                           headers={"x-forwarded-for": "6.6.6.6"})


def test_client_key_is_the_peer_address_not_x_forwarded_for():
    assert client_key(_request("203.0.113.7")) == "203.0.113.7"
    assert client_key(_request(None)) == "unknown"
    # One subscriber's IPv6 /64 counts as one client; IPv4-mapped addresses as the IPv4 one.
    assert client_key(_request("2001:db8:1:2:aaaa::1")) == client_key(_request("2001:db8:1:2:bbbb::9"))
    assert client_key(_request("2001:db8:1:2:aaaa::1")) == "2001:db8:1:2::/64"
    assert client_key(_request("2001:db8:1:3::1")) != client_key(_request("2001:db8:1:2::1"))
    assert client_key(_request("::ffff:198.51.100.4")) == "198.51.100.4"


def test_name_key_is_a_short_hash_of_the_lowercased_name():
    key = name_key("Support")
    assert key == name_key("support") == name_key(" SUPPORT ")
    assert key != name_key("support2")
    assert len(key) == 16 and int(key, 16) >= 0
    assert "support" not in key


# --- redis --------------------------------------------------------------------------------


async def test_two_instances_share_counts_through_redis(make_limits, redis_url):
    one = make_limits({"admin": "5/minute"}, redis_url=redis_url)
    two = make_limits({"admin": "5/minute"}, redis_url=redis_url)

    assert [(await one.hit("admin", "10.0.0.1")).remaining for _ in range(3)] == [4, 3, 2]
    assert [(await two.hit("admin", "10.0.0.1")).remaining for _ in range(2)] == [1, 0]
    assert one.backend == two.backend == "redis"
    assert not one.degraded and not two.degraded

    assert not (await one.hit("admin", "10.0.0.1")).allowed
    refused = await two.hit("admin", "10.0.0.1")
    assert not refused.allowed and refused.reset_after >= 1
    assert (await two.hit("admin", "10.0.0.2")).allowed


async def test_unreachable_redis_counts_in_memory_and_says_so(make_limits):
    rl = make_limits({"login_client": "2/minute"},
                     redis_url=f"redis://127.0.0.1:{closed_port()}/0", redis_timeout_s=0.5)
    assert rl.backend == "redis"

    answers = [await rl.hit("login_client", "10.0.0.1") for _ in range(3)]
    assert rl.degraded is True
    assert rl.backend == "memory (redis unreachable)"
    # Still limited (not failing open): memory counted the hits.
    assert [d.allowed for d in answers] == [True, True, False]
    assert answers[2].headers()["Retry-After"] == str(answers[2].reset_after)


async def test_a_redis_that_answers_nothing_times_out_to_memory(make_limits):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel accepts connections; nobody ever answers
    try:
        port = silent.getsockname()[1]
        rl = make_limits({"admin": "5/minute"}, redis_url=f"redis://127.0.0.1:{port}/0",
                         redis_timeout_s=0.2)
        started = time.monotonic()
        decision = await rl.hit("admin", "10.0.0.1")
        assert time.monotonic() - started < 2.0
        assert decision.allowed and decision.remaining == 4
        assert rl.degraded
    finally:
        silent.close()


async def test_redis_is_tried_again_after_the_retry_period(make_limits):
    port = closed_port()
    clock = FakeClock()
    rl = make_limits({"owner": "5/minute"}, redis_url=f"redis://127.0.0.1:{port}/0",
                     clock=clock, retry_shared_after_s=30.0, redis_timeout_s=0.5)
    await rl.hit("owner", "salon-1")
    await rl.hit("owner", "salon-1")
    assert rl.degraded

    with running_redis(port) as url:
        peer = make_limits({"owner": "5/minute"}, redis_url=url)
        # Redis is up, but the retry period has not passed: still memory.
        clock.now += 29.0
        third = await rl.hit("owner", "salon-1")
        assert rl.backend == "memory (redis unreachable)" and third.remaining == 2

        clock.now += 1.0
        back = await rl.hit("owner", "salon-1")
        assert rl.backend == "redis" and rl.degraded is False
        # Counted in Redis (a fresh count, 1 of 5), where another instance sees it.
        assert back.remaining == 4
        assert (await peer.hit("owner", "salon-1")).remaining == 3


# --- postgresql ---------------------------------------------------------------------------


async def test_two_instances_share_counts_through_postgresql(make_limits, pools):
    one = make_limits({"admin": "5/minute"}, pool=await pools())
    two = make_limits({"admin": "5/minute"}, pool=await pools())
    assert one.backend == "postgresql" and one.shared and not one.degraded

    assert [(await one.hit("admin", "10.0.0.1")).remaining for _ in range(3)] == [4, 3, 2]
    assert [(await two.hit("admin", "10.0.0.1")).remaining for _ in range(2)] == [1, 0]
    refused = await one.hit("admin", "10.0.0.1")
    assert not refused.allowed and refused.remaining == 0 and 1 <= refused.reset_after <= 60
    assert refused.headers()["Retry-After"] == str(refused.reset_after)
    assert not (await two.peek("admin", "10.0.0.1")).allowed
    assert (await two.hit("admin", "10.0.0.2")).remaining == 4  # another key counts apart


async def test_postgresql_counts_are_exact_under_concurrent_hits(make_limits, pools):
    # 60 hits at once from three instances, each with its own connections: exactly 20 pass.
    instances = [make_limits({"landing": "20/minute"}, pool=await pools()) for _ in range(3)]
    decisions = await asyncio.gather(*(rl.hit("landing", "10.0.0.9") for _ in range(20) for rl in instances))
    assert sum(d.allowed for d in decisions) == 20
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(20))


async def test_peek_counts_nothing_and_refused_hits_are_not_stored(make_limits, pools, db):
    rl = make_limits({"api_key_client": "2/minute"}, pool=await pools())
    assert (await rl.peek("api_key_client", "10.0.0.1")).allowed
    assert db.count("rate_limit_counts") == 0
    for _ in range(4):
        await rl.hit("api_key_client", "10.0.0.1")
    peeked = await rl.peek("api_key_client", "10.0.0.1")
    assert not peeked.allowed and peeked.reset_after >= 1
    # The window keeps at most the limit's amount of hits: refusals do not grow it.
    assert db.fetchval("SELECT cardinality(hits) FROM rate_limit_counts") == 2


async def test_hits_leave_the_postgresql_window_when_it_ends(make_limits, pools, db):
    rl = make_limits({"owner": "2/minute"}, pool=await pools())
    await rl.hit("owner", "salon-1")
    await rl.hit("owner", "salon-1")
    assert not (await rl.hit("owner", "salon-1")).allowed
    # Age the stored hits by a minute (the database's clock is the window's clock).
    db.execute("UPDATE rate_limit_counts SET hits = ARRAY(SELECT h - interval '61 seconds' FROM unnest(hits) h),"
               " last_hit_at = last_hit_at - interval '61 seconds'")
    again = await rl.hit("owner", "salon-1")
    assert again.allowed and again.remaining == 1


async def test_idle_postgresql_rows_are_forgotten(make_limits, pools, db):
    clock = FakeClock()
    rl = make_limits({"owner": "2/minute"}, pool=await pools(), clock=clock)
    await rl.hit("owner", "salon-1")
    db.execute("UPDATE rate_limit_counts SET last_hit_at = now() - interval '2 minutes'")
    clock.now += 301
    await rl.hit("owner", "salon-2")
    assert [r["key"] for r in db.fetch("SELECT key FROM rate_limit_counts")] == ["salon-2"]


async def test_an_unreachable_database_counts_in_memory_and_says_so(make_limits, pools):
    pool = await pools()
    rl = make_limits({"login_client": "2/minute"}, pool=pool)
    await pool.close()  # the database is gone for this instance
    answers = [await rl.hit("login_client", "10.0.0.1") for _ in range(3)]
    assert [d.allowed for d in answers] == [True, True, False]
    assert rl.degraded and not rl.shared
    assert rl.backend == "memory (postgresql unreachable)"
