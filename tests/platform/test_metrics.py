"""Metrics (per-app registry, breaker hook, pool gauges and health) and Sentry scrubbing.

The pool tests use a real asyncpg pool on this test's own database; the Sentry tests that
need a DSN run in a subprocess, because sentry_sdk.init patches Starlette and httpx for the
whole process and would leak into every later test.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg
import pytest
import sentry_sdk
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from portal.platform.error_reporting import SCRUBBED, init_sentry, report_message, scrub
from portal.platform.metrics import PoolGauge, PoolHealth, PortalMetrics
from portal.whatsapp.breaker import BreakerState, CircuitBreaker
from tests.helpers.clock import FakeClock

ROOT = Path(__file__).resolve().parents[2]


class Boom(Exception):
    pass


def scraped(metrics: PortalMetrics) -> dict[tuple[str, tuple], float]:
    """Parse render() output the way Prometheus would: {(sample name, labels): value}."""
    body, _ = metrics.render()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(metrics: PortalMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def wait_for(predicate, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition never became true")
        await asyncio.sleep(0.005)


# -- PortalMetrics ------------------------------------------------------------------------


def test_render_contains_every_metric_after_use():
    m = PortalMetrics()
    m.activation("ACTIVATED", 0.4)
    m.activation("CONCURRENT_ACTIVATION", 0.01)
    m.qr_generated(2.5)
    m.gateway_error("timeout")
    m.webhook_delivery("whatsapp", "accepted")
    m.rate_limit_rejection("qr_poll")
    m.breaker_transition("qrGeneration")(BreakerState.CLOSED, BreakerState.OPEN)

    body, content_type = m.render()
    samples = scraped(m)
    assert content_type == CONTENT_TYPE_LATEST
    assert samples[("portal_activations_total", (("outcome", "ACTIVATED"),))] == 1
    assert samples[("portal_activations_total", (("outcome", "CONCURRENT_ACTIVATION"),))] == 1
    assert samples[("portal_activation_duration_seconds_count", ())] == 2
    assert samples[("portal_activation_duration_seconds_sum", ())] == pytest.approx(0.41)
    assert samples[("portal_qr_generation_seconds_count", ())] == 1
    assert samples[("portal_qr_generation_seconds_bucket", (("le", "2.5"),))] == 1
    assert samples[("portal_qr_generation_seconds_bucket", (("le", "1.0"),))] == 0
    assert samples[("portal_gateway_errors_total", (("kind", "timeout"),))] == 1
    assert samples[("portal_webhook_deliveries_total",
                    (("outcome", "accepted"), ("source", "whatsapp")))] == 1
    assert samples[("portal_rate_limit_rejections_total", (("scope", "qr_poll"),))] == 1
    assert samples[("portal_breaker_state", (("breaker", "qrGeneration"),))] == 2
    assert samples[("portal_breaker_transitions_total", (
        ("breaker", "qrGeneration"), ("from_state", "closed"), ("to_state", "open")))] == 1
    # No pool source: the pool gauges are absent rather than a misleading 0.
    assert b"portal_db_pool" not in body


async def test_breaker_callback_follows_a_real_breaker_through_open_and_back():
    m = PortalMetrics()
    clock = FakeClock(1000.0)
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=30, success_threshold=1,
                             clock=clock, wall_clock=FakeClock(1.7e9), name="qrGeneration",
                             on_transition=m.breaker_transition("qrGeneration"))
    assert value(m, "portal_breaker_state", breaker="qrGeneration") == 0  # known before any call

    async def fail():
        raise Boom("gateway down")

    async def ok():
        return "qr"

    for _ in range(2):
        with pytest.raises(Boom):
            await breaker.call(fail)
    assert breaker.stats()["state"] == "open"
    assert value(m, "portal_breaker_state", breaker="qrGeneration") == 2
    assert value(m, "portal_breaker_transitions_total", breaker="qrGeneration",
                 from_state="closed", to_state="open") == 1

    clock.advance(30)
    assert breaker.state is BreakerState.HALF_OPEN  # lazy transition fires the hook
    assert value(m, "portal_breaker_state", breaker="qrGeneration") == 1
    assert await breaker.call(ok) == "qr"
    assert breaker.stats()["state"] == "closed"
    assert value(m, "portal_breaker_state", breaker="qrGeneration") == 0
    for old, new in (("open", "half_open"), ("half_open", "closed")):
        assert value(m, "portal_breaker_transitions_total", breaker="qrGeneration",
                     from_state=old, to_state=new) == 1


def test_two_instances_share_nothing():
    a, b = PortalMetrics(), PortalMetrics()  # a shared registry would raise "Duplicated"
    a.activation("ACTIVATED", 0.1)
    a.breaker_transition("qrGeneration")(BreakerState.CLOSED, BreakerState.OPEN)
    b.breaker_transition("qrGeneration")

    assert value(a, "portal_activations_total", outcome="ACTIVATED") == 1
    assert value(b, "portal_activations_total", outcome="ACTIVATED") is None
    assert value(b, "portal_activation_duration_seconds_count") == 0
    assert value(a, "portal_breaker_state", breaker="qrGeneration") == 2
    assert value(b, "portal_breaker_state", breaker="qrGeneration") == 0
    assert b"ACTIVATED" not in b.render()[0]


def test_failing_pool_source_does_not_break_the_scrape():
    def broken():
        raise RuntimeError("pool gone")

    m = PortalMetrics(pool_source=broken)
    m.activation("ACTIVATED")
    body, _ = m.render()
    assert b'portal_activations_total{outcome="ACTIVATED"} 1.0' in body
    assert b"portal_db_pool" not in body
    m.set_pool_source(lambda: None)  # lifespan not started yet / already ended
    assert b"portal_db_pool" not in m.render()[0]


# -- pool gauge and health ----------------------------------------------------------------


async def test_pool_gauge_sees_waiters_on_a_real_pool(database_url):
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=2)
    health = PoolHealth(window=2)
    metrics = PortalMetrics()
    metrics.set_pool_source(lambda: pool, health)
    third = None
    try:
        assert PoolGauge.sample(pool) == {"size": 2, "in_use": 0, "idle": 2, "max": 2,
                                          "waiting": 0}
        first, second = await pool.acquire(), await pool.acquire()
        third = asyncio.ensure_future(pool.acquire())  # acquire() returns an awaitable, not a coroutine
        await wait_for(lambda: PoolGauge.waiting(pool) >= 1)

        sample = PoolGauge.sample(pool)
        assert sample["waiting"] >= 1
        assert sample["in_use"] == 2 and sample["idle"] == 0 and sample["size"] == 2
        assert sample["max"] == 2
        # The scrape reads the same numbers and feeds the health object a sample.
        samples = scraped(metrics)
        assert samples[("portal_db_pool_waiting", ())] >= 1
        assert samples[("portal_db_pool_in_use", ())] == 2
        assert samples[("portal_db_pool_size", ())] == 2
        assert samples[("portal_db_pool_idle", ())] == 0
        assert samples[("portal_db_pool_max", ())] == 2

        health.observe(sample)  # 2 samples at 100 % use, one with waiters
        assert health.warnings() == ["database pool had waiters",
                                     "database pool above 80% use"]

        await pool.release(first)
        conn = await asyncio.wait_for(third, 5)
        after = PoolGauge.sample(pool)
        assert after["waiting"] == 0 and after["in_use"] == 2
        health.observe(after)
        # Waiters were reported at the last check; use is still at the cap.
        assert health.warnings() == ["database pool above 80% use"]

        await pool.release(second)
        await pool.release(conn)
        idle = PoolGauge.sample(pool)
        assert idle["in_use"] == 0 and idle["idle"] == 2
        health.observe(idle)
        assert health.warnings() == []
    finally:
        if third is not None and not third.done():
            third.cancel()
        # terminate, not close: close() waits for held connections, and after a failed
        # assertion above some are still held.
        pool.terminate()


def test_pool_health_needs_a_full_window_of_high_use():
    def s(in_use: int, waiting: int = 0) -> dict:
        return {"size": 10, "in_use": in_use, "idle": 10 - in_use, "max": 10, "waiting": waiting}

    health = PoolHealth(window=3)
    health.observe(s(9))
    health.observe(s(9))
    assert health.warnings() == []  # two samples are not "the last 3"
    health.observe(s(10))
    assert health.warnings() == ["database pool above 80% use"]
    health.observe(s(8))  # exactly 80 % is not above it
    assert health.warnings() == []
    health.observe(s(3, waiting=2))
    health.observe(s(1))
    assert health.warnings() == ["database pool had waiters"]  # seen since the last check
    assert health.warnings() == []


def test_pool_gauge_without_asyncpg_internals_reports_zero_waiters():
    class BarePool:  # public API only, e.g. a future asyncpg without _queue
        def get_size(self):
            return 3

        def get_idle_size(self):
            return 1

        def get_max_size(self):
            return 5

    assert PoolGauge.sample(BarePool()) == {"size": 3, "in_use": 2, "idle": 1, "max": 5,
                                           "waiting": 0}


# -- Sentry ---------------------------------------------------------------------------------


def test_scrub_removes_credentials_cookies_query_and_personal_extra():
    event = {
        "message": "boom",
        "request": {
            "url": "https://portal.example/onboarding?token=abc",
            "method": "GET",
            "query_string": "salon_id=1&user_data_sign=deadbeef&phone=79001234567",
            "cookies": {"session": "cookie-value"},
            "headers": {"Authorization": "Bearer s3cret", "x-api-key": "sk_live_key",
                        "Cookie": "session=cookie-value", "User-Agent": "Mozilla/5.0",
                        "X-Webhook-Signature": "sha256=abcd"},
        },
        "extra": {"phone": "+79001234567", "salon_id": 42,
                  "nested": {"Email": "owner@example.com", "step": "qr"}},
        "contexts": {"partner": {"partner_token": "pt-123", "status": 500},
                     "runtime": {"name": "CPython", "version": "3.11.7"}},
    }
    result = scrub(event, {})

    assert result is event
    request = event["request"]
    assert request["headers"]["Authorization"] == SCRUBBED
    assert request["headers"]["x-api-key"] == SCRUBBED
    assert request["headers"]["Cookie"] == SCRUBBED
    assert request["headers"]["X-Webhook-Signature"] == SCRUBBED
    assert request["headers"]["User-Agent"] == "Mozilla/5.0"  # harmless headers stay
    assert request["query_string"] == SCRUBBED
    assert request["cookies"] == SCRUBBED
    assert request["url"] == "https://portal.example/onboarding"
    assert event["extra"] == {"phone": SCRUBBED, "salon_id": 42,
                              "nested": {"Email": SCRUBBED, "step": "qr"}}
    assert event["contexts"]["partner"] == {"partner_token": SCRUBBED, "status": 500}
    assert event["contexts"]["runtime"] == {"name": "CPython", "version": "3.11.7"}
    dumped = json.dumps(event)
    for secret in ("s3cret", "sk_live_key", "cookie-value", "79001234567", "deadbeef",
                   "owner@example.com", "pt-123", "abcd"):
        assert secret not in dumped


def test_scrub_removes_sensitive_frame_locals_and_asgi_scope_parts():
    # Frame locals are off at init; this is the second line should someone turn them on.
    scope = {"type": "http", "path": "/boom", "query_string": "b'phone=79001234567'",
             "headers": [["b'authorization'", "b'Bearer s3cret'"]]}
    event = {"exception": {"values": [{"type": "Boom", "stacktrace": {"frames": [
        {"function": "activate", "vars": {"api_key": "'sk_x'", "salon_id": "7",
                                          "scope": scope}}]}}]}}
    frame = scrub(event, None)["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame["vars"] == {"api_key": SCRUBBED, "salon_id": "7", "scope": {
        "type": "http", "path": "/boom", "query_string": SCRUBBED, "headers": SCRUBBED}}


def test_without_dsn_sentry_stays_off_and_messages_are_dropped(monkeypatch):
    sent = []
    monkeypatch.setattr(sentry_sdk.Scope, "capture_message",
                        lambda self, *a, **k: sent.append(a))
    assert not sentry_sdk.get_client().is_active()
    assert init_sentry(None, environment="test", release="r1") is False
    assert init_sentry("", environment="test", release="r1") is False
    assert not sentry_sdk.get_client().is_active()
    report_message("database pool had waiters", component="db")
    assert sent == []


_SENTRY_SCRIPT = textwrap.dedent("""
    import json
    import sentry_sdk
    from sentry_sdk.transport import Transport
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient
    from portal.platform.error_reporting import init_sentry, report_message, scrub

    class Capture(Transport):
        def __init__(self):
            super().__init__()
            self.events = []

        def capture_envelope(self, envelope):
            self.events += [i.payload.json for i in envelope.items if i.type == "event"]

    on = init_sentry("https://public@o0.ingest.example.invalid/1",
                     environment="staging", release="portal@1.2.3")
    client = sentry_sdk.get_client()
    capture = Capture()
    client.transport = capture  # nothing leaves the process

    report_message("database pool had waiters", component="db")

    async def boom(request):
        phone = "+79001234567"  # a local the frame would otherwise show
        raise RuntimeError("activation failed")

    app = Starlette(routes=[Route("/boom", boom)])
    with TestClient(app, raise_server_exceptions=False) as http:
        status = http.get("/boom?user_data_sign=deadbeef&phone=79001234567",
                          headers={"Authorization": "Bearer s3cret", "X-Api-Key": "sk_live_key",
                                   "Cookie": "session=cookie-value"}).status_code
    client.flush()
    print(json.dumps({
        "on": on, "status": status, "events": capture.events,
        "options": {k: client.options[k] for k in
                    ("environment", "release", "send_default_pii", "traces_sample_rate",
                     "include_local_variables")},
        "before_send_is_scrub": client.options["before_send"] is scrub,
    }))
""")


def test_init_sentry_reports_scrubbed_events_through_starlette():
    done = subprocess.run([sys.executable, "-c", _SENTRY_SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["on"] is True
    assert out["before_send_is_scrub"] is True
    assert out["options"] == {"environment": "staging", "release": "portal@1.2.3",
                              "send_default_pii": False, "traces_sample_rate": 0,
                              "include_local_variables": False}
    assert out["status"] == 500
    message, error = out["events"]
    assert message["message"] == "database pool had waiters"
    assert message["tags"]["component"] == "db"
    assert error["exception"]["values"][-1]["value"] == "activation failed"
    request = error["request"]
    assert request["query_string"] == SCRUBBED
    assert request["headers"]["authorization"] == SCRUBBED
    dumped = json.dumps(error)
    for secret in ("s3cret", "sk_live_key", "cookie-value", "79001234567", "deadbeef"):
        assert secret not in dumped


def test_breaker_gauge_takes_plain_state_strings_with_the_same_values():
    m = PortalMetrics()
    hook = m.breaker_transition("b", initial="open")
    assert value(m, "portal_breaker_state", breaker="b") == 2
    hook("open", "half_open")
    assert value(m, "portal_breaker_state", breaker="b") == 1
    hook(BreakerState.HALF_OPEN, BreakerState.CLOSED)  # the breaker's own StrEnum members
    assert value(m, "portal_breaker_state", breaker="b") == 0
    assert value(m, "portal_breaker_transitions_total", breaker="b",
                 from_state="half_open", to_state="closed") == 1


def test_the_platform_layer_imports_no_subsystem():
    # The platform is the lowest layer: importing any of it (metrics, health, ...) must not pull
    # in a subsystem or the composition root.
    script = ("import sys, pkgutil, importlib, portal.platform as p\n"
              "for m in pkgutil.iter_modules(p.__path__): importlib.import_module('portal.platform.' + m.name)\n"
              "print(sorted(m for m in sys.modules if m.startswith('portal.') and "
              "not m.startswith('portal.platform')))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
