"""Slow and vanishing clients against a real uvicorn server: a body that trickles in is cut
at BODY_READ_TIMEOUT_S with a 408, and a body the client abandons is logged as the
client's doing (499), never as our 500 with a traceback. Also what `portal serve` hands
uvicorn: whose forwarded headers it believes and its timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

import pytest

from portal.__main__ import server_options
from portal.app import create_app
from portal.platform.settings import SettingsError, load_settings
from tests.helpers.servers import serve

SLOW = 40
TIMEOUT_S = 1.0


class Records(logging.Handler):
    """Every log record of the portal and uvicorn, with an event per awaited condition."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def wait_for(self, predicate, timeout_s: float = 10.0) -> list[logging.LogRecord]:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.records), timeout=timeout_s), \
                [(r.name, r.getMessage(), getattr(r, "status", None)) for r in self.records]
            return list(self.records)

    def statuses(self) -> list[int]:
        return [r.status for r in self.records if r.name == "portal.access"]  # type: ignore[attr-defined]


@pytest.fixture
def records():
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("portal", "uvicorn", "uvicorn.error", "starlette")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG if lg.name == "portal" else logging.INFO)
    yield handler
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


@pytest.fixture
def portal_url(make_settings):
    settings = make_settings(BODY_READ_TIMEOUT_S=str(TIMEOUT_S), WEBHOOK_RATE_LIMIT="1000/minute")
    with serve(create_app(settings)) as url:
        yield url


def _head(port: int, length: int) -> bytes:
    return (f"POST /webhook/yclients HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


async def _slow_body(port: int) -> tuple[bytes, float]:
    """Send the headers, then one body byte every 0.2 s; what came back and when."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(_head(port, 1000) + b"{")

    async def trickle() -> None:
        while True:
            await asyncio.sleep(0.2)
            writer.write(b" ")
            await writer.drain()

    dripping = asyncio.create_task(trickle())
    try:
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        took = time.monotonic() - started
        # Then the server closes (a byte sent after that may draw a reset instead of EOF).
        with contextlib.suppress(ConnectionResetError):
            await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        dripping.cancel()
        writer.close()
    return answer, took


def test_forty_trickling_bodies_are_cut_at_the_body_timeout(portal_url, records):
    port = int(portal_url.rsplit(":", 1)[1])

    async def all_of_them():
        return await asyncio.gather(*(_slow_body(port) for _ in range(SLOW)))

    started = time.monotonic()
    results = asyncio.run(all_of_them())
    elapsed = time.monotonic() - started
    # Each one got a 408 and a closed connection, although it kept sending: the bound is on
    # the whole body, not on the gap between two bytes.
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer, _ in results), results[0][0][:200]
    assert all(b"connection: close" in answer.lower() for answer, _ in results)
    assert min(took for _, took in results) >= TIMEOUT_S
    assert elapsed < TIMEOUT_S + 4, elapsed
    logged = records.wait_for(lambda rs: sum(getattr(r, "status", 0) == 408 for r in rs) == SLOW)
    assert not [r for r in logged if r.levelno >= logging.ERROR]
    assert 500 not in records.statuses()


def test_an_abandoned_body_is_the_clients_doing_not_a_500(portal_url, records):
    port = int(portal_url.rsplit(":", 1)[1])

    async def abandon():
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_head(port, 1000) + b'{"salon_id": 1')
        await writer.drain()
        writer.close()  # gone mid-upload
        await writer.wait_closed()

    asyncio.run(abandon())
    logged = records.wait_for(lambda rs: 499 in [getattr(r, "status", None) for r in rs])
    assert records.statuses() == [499]
    assert not [r for r in logged if r.levelno >= logging.ERROR], [r.getMessage() for r in logged]
    assert not [r for r in logged if r.exc_info]


# --- what `portal serve` hands uvicorn ------------------------------------------------------

PROD = {"SANDBOX": "false", "JWT_SECRET": "j" * 32, "SESSION_SECRET": "s" * 32, "API_KEY_SECRET": "a" * 32,
        "YCLIENTS_PARTNER_TOKEN": "partner", "WAHA_URL": "http://waha:3000", "WAHA_WEBHOOKS": "off"}


def test_forwarded_headers_are_believed_from_nobody_in_production_unless_named(tmp_path):
    prod = load_settings({**PROD, "PORTAL_DATA_DIR": str(tmp_path)}, env_file=None)
    assert prod.forwarded_allow_ips is None
    options = server_options(prod)
    assert options["proxy_headers"] is False and options["forwarded_allow_ips"] == ""
    assert options["timeout_keep_alive"] == 5 and options["timeout_graceful_shutdown"] == 45
    named = load_settings({**PROD, "PORTAL_DATA_DIR": str(tmp_path), "FORWARDED_ALLOW_IPS": "172.30.80.10, 10.0.0.0/8",
                           "KEEPALIVE_TIMEOUT_S": "7", "SHUTDOWN_TIMEOUT_S": "60"}, env_file=None)
    assert server_options(named) == {**options, "proxy_headers": True, "forwarded_allow_ips": "172.30.80.10,10.0.0.0/8",
                                     "timeout_keep_alive": 7, "timeout_graceful_shutdown": 60}
    demo = load_settings({"PORTAL_DATA_DIR": str(tmp_path)}, env_file=None)
    assert demo.forwarded_allow_ips == "127.0.0.1"


@pytest.mark.parametrize(("env", "named"), [
    ({"FORWARDED_ALLOW_IPS": "*"}, "FORWARDED_ALLOW_IPS"),
    ({"FORWARDED_ALLOW_IPS": "proxy.local"}, "FORWARDED_ALLOW_IPS"),
    ({"SHUTDOWN_TIMEOUT_S": "30"}, "SHUTDOWN_TIMEOUT_S"),  # not above YCLIENTS_TIMEOUT_S (30)
    ({"INSTANCE_NAME": "a b"}, "INSTANCE_NAME"),
    ({"BODY_READ_TIMEOUT_S": "0"}, "BODY_READ_TIMEOUT_S"),
])
def test_bad_serving_settings_stop_start_up_naming_the_setting(tmp_path, env, named):
    with pytest.raises(SettingsError, match=named):
        load_settings({**PROD, "PORTAL_DATA_DIR": str(tmp_path), **env}, env_file=None)
