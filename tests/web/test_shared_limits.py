"""A configured limit holds across workers: `python -m portal serve --workers 2` counts in
PostgreSQL without Redis and in Redis with it, so the 21st request of a 20/minute limit is
refused whichever worker takes it -- for the admin API, the staff sign-in and the landing."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import coredis
import httpx
import pytest

from tests.helpers.gateways.fake_waha import create_fake_waha
from tests.helpers.portal_process import PortalProcess, portal_process
from tests.helpers.redis_server import redis_url  # noqa: F401  (fixture)
from tests.helpers.servers import free_port, serve
from tests.helpers.staff import API_KEY, staff_env


@pytest.fixture(params=["postgresql", "redis"])
def two_workers(request, database_url, tmp_path):
    shared = {}
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        # A database of its own on the test Redis: no counts from other tests or runs.
        shared = {"REDIS_URL": urlsplit(url)._replace(path="/7").geturl()}
        _flush(shared["REDIS_URL"])
    waha_app, _ = create_fake_waha("waha-key")
    port = free_port()
    env = {"DATABASE_URL": database_url, "PORTAL_DATA_DIR": str(tmp_path / "data"), "SANDBOX": "true",
           "WHATSAPP_GATEWAY": "waha", "WAHA_API_KEY": "waha-key", "WAHA_WEBHOOK_HMAC_KEY": "hook-key",
           "PORTAL_BASE_URL": f"http://127.0.0.1:{port}", "HEALTH_CHECK_TOKEN": "health-token-for-tests",
           "ADMIN_RATE_LIMIT": "20/minute", "LOGIN_RATE_LIMIT": "20/minute", "LANDING_RATE_LIMIT": "20/minute",
           **staff_env(), **shared}
    with serve(waha_app) as waha_url, portal_process(env | {"WAHA_URL": waha_url}, port, tmp_path / "run",
                                                     startup_timeout_s=90, args=("--workers", "2")) as running:
        yield running, request.param


def _flush(url: str) -> None:
    async def flush() -> None:
        await coredis.Redis.from_url(url).flushdb()

    asyncio.run(flush())


def each_on_a_new_connection(running: PortalProcess, send) -> list[int]:
    """Status codes of 21 requests, each on its own connection so either worker may take it."""
    codes = []
    for i in range(21):
        with httpx.Client(base_url=running.url, timeout=30) as client:
            codes.append(send(client, i).status_code)
    return codes


def test_a_limit_holds_across_two_workers(two_workers):
    running, store = two_workers
    admin = each_on_a_new_connection(
        running, lambda c, i: c.get("/marketplace/admin/salons", headers={"X-API-Key": API_KEY}))
    assert admin == [200] * 20 + [429]

    # Wrong passwords under 21 names (so only the per-client limit can refuse).
    login = each_on_a_new_connection(
        running, lambda c, i: c.post("/admin/login", data={"username": f"guess-{i}", "password": "x"},
                                     headers={"Origin": running.url}))
    assert login == [401] * 20 + [429]

    landing = each_on_a_new_connection(running, lambda c, i: c.get("/auth/yclients/redirect"))
    assert all(code != 429 for code in landing[:20]) and landing[20] == 429

    # Both workers took part, and the health detail says where the counts live.
    workers = {line["pid"] for line in running.requests()}
    assert len(workers) == 2, workers
    health = httpx.get(f"{running.url}/marketplace/health",
                       headers={"Authorization": "Bearer health-token-for-tests"}).json()
    assert health["rateLimits"] == {"backend": store, "shared": True}
