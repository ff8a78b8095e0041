"""Two portal instances behind Debian's nginx running deploy/nginx.conf, as in production:
the owner's whole walk in Chromium goes through the proxy and lands on both instances.

Two `portal serve` processes share one PostgreSQL and one gateway. The gateway is a fake
WAHA on 127.0.0.1, not the demo simulator: the simulator lives inside one instance, so a
session started on A would be unknown to B (and a sandbox "scan" sent to B would find
nothing). The sandbox still stands in for YClients: its pages only sign landings with the
shared partner token, and its partner API is reached through the proxy like the rest.

Also the forwarded headers, against real processes: X-Forwarded-Proto from a trusted
proxy makes the session cookie `Secure`; X-Forwarded-For from an address not in
FORWARDED_ALLOW_IPS does not let a client dodge a rate limit.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.test_support import sign_in
from tests.helpers.gateways.fake_waha import create_fake_waha
from tests.helpers.portal_process import PortalProcess, portal_process
from tests.helpers.servers import free_port, serve
from tests.helpers.staff import staff_env
from tests.house.test_deploy_files import running_nginx

SALON = 500001
WAHA_KEY = "waha-key-for-the-proxy-walk"


def instance_env(database_url: str, data_dir: Path, base_url: str, name: str, **extra: str) -> dict[str, str]:
    # One data dir: both instances read the same generated demo secrets, so a session cookie
    # signed by A is good on B.
    return {"DATABASE_URL": database_url, "PORTAL_DATA_DIR": str(data_dir), "PORTAL_BASE_URL": base_url,
            "SANDBOX": "true", "INSTANCE_NAME": name, "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "QR_POLL_INTERVAL_S": "0.3", "WHATSAPP_SAFETY_POLL_S": "0.5", **staff_env(), **extra}


@contextlib.contextmanager
def two_instances_behind_nginx(database_url: str, tmp_path: Path, **extra: str) -> Iterator[
        tuple[str, PortalProcess, PortalProcess]]:
    ports = [free_port(), free_port()]
    (tmp_path / "nginx").mkdir()
    with running_nginx(tmp_path / "nginx", [f"127.0.0.1:{p}" for p in ports]) as proxy:
        envs = [instance_env(database_url, tmp_path / "data", proxy, name, **extra) for name in ("a", "b")]
        with portal_process(envs[0], ports[0], tmp_path / "a", name="a") as a, \
                portal_process(envs[1], ports[1], tmp_path / "b", name="b") as b:
            yield proxy, a, b


@pytest.fixture
def waha():
    app, state = create_fake_waha(WAHA_KEY)
    state.status_on_start = "SCAN_QR_CODE"
    with serve(app) as url:
        yield url, state


def test_the_owner_walk_through_nginx_lands_on_both_instances(database_url, tmp_path, waha, browser):
    waha_url, gateway = waha
    # Each instance's sandbox keeps its own "YClients" in memory, so Install pressed on one is
    # not pending on the other: this walk is about the proxy, the landing's check is off.
    with two_instances_behind_nginx(database_url, tmp_path, WHATSAPP_GATEWAY="waha", WAHA_URL=waha_url,
                                    WAHA_API_KEY=WAHA_KEY, LANDING_REQUIRE_PENDING="false") as (proxy, a, b):
        answered_by: Counter[str] = Counter()
        context = browser.new_context(locale="en-US")
        context.on("response", lambda r: answered_by.update([r.headers.get("x-portal-instance", "none")]))
        owner = context.new_page()

        # Each instance's sandbox keeps its own "YClients" in memory: Install is pressed in both,
        # so the install is pending whichever instance the activation's status read reaches.
        for instance in (a, b):
            assert httpx.get(f"{instance.url}/sandbox/install/{SALON}", timeout=10).status_code == 303
        owner.goto(f"{proxy}/sandbox/install/{SALON}")  # the landing, signed as YClients does
        qr = owner.get_by_test_id("qr")
        expect(qr).to_be_visible(timeout=15_000)
        assert qr.get_attribute("data-qr") == gateway.sessions[f"salon-{SALON}"].qr

        # The salon's phone scans: the gateway says so with its webhook, sent to the proxy.
        gateway.set_status(f"salon-{SALON}", "WORKING")
        gateway.set_me(f"salon-{SALON}", "79160000001")
        assert gateway.emit(f"salon-{SALON}") == [200]
        expect(owner.get_by_test_id("connected")).to_contain_text("01", timeout=15_000)

        owner.get_by_test_id("activate").click()
        expect(owner).to_have_url(f"{proxy}/sandbox/installed/{SALON}", timeout=15_000)
        owner.goto(f"{proxy}/onboarding")  # an active salon's owner lands on the salon's own page
        expect(owner).to_have_url(f"{proxy}/salon")
        expect(owner.get_by_test_id("integration-active")).to_be_visible()

        staff = context.new_page()  # the support dashboard shows the salon active
        sign_in(staff, proxy)
        staff.goto(f"{proxy}/admin/salons/{SALON}")
        expect(staff.get_by_test_id("salon-status")).to_have_text("active")
        context.close()

    # Round robin: both instances answered the browser, and both logged requests.
    assert answered_by["a"] > 0 and answered_by["b"] > 0, answered_by
    assert answered_by["none"] == 0, answered_by
    for instance in (a, b):
        served = [line for line in instance.requests() if line["path"] != "/livez"]
        assert served, f"instance {instance.url} served nothing"
        assert not [line for line in instance.log_lines() if line.get("level") == "error"]
        assert all(line["status"] < 500 for line in served)


def test_forwarded_https_from_the_proxy_makes_the_session_cookie_secure(database_url, tmp_path):
    port = free_port()
    env = instance_env(database_url, tmp_path / "data", "http://127.0.0.1:8080", "a")
    with portal_process(env, port, tmp_path / "a") as portal:
        def session_cookie(headers: dict[str, str]) -> str:
            r = httpx.get(f"{portal.url}/sandbox/install/{SALON}", headers=headers, follow_redirects=True, timeout=10)
            cookies = [c for c in r.history[-1].headers.get_list("set-cookie") + r.headers.get_list("set-cookie")
                       if c.startswith("portal_session=")]
            assert cookies, r.status_code
            return cookies[0].lower()

        # From 127.0.0.1, the address FORWARDED_ALLOW_IPS names: the proxy is believed.
        assert "; secure" in session_cookie({"X-Forwarded-Proto": "https"})
        assert "; secure" not in session_cookie({})


def test_a_forged_forwarded_for_does_not_dodge_a_rate_limit(database_url, tmp_path):
    def hammer(portal: PortalProcess) -> list[int]:
        return [httpx.post(f"{portal.url}/webhook/yclients", content=b"{}", timeout=10,
                           headers={"X-Forwarded-For": f"203.0.113.{i}", "Content-Type": "application/json"}
                           ).status_code for i in range(4)]

    limits = {"WEBHOOK_RATE_LIMIT": "3/minute"}
    base = "http://127.0.0.1:8080"
    # The proxy's address (here the client's, 127.0.0.1) is not trusted: the header is ignored,
    # all four count against 127.0.0.1 and the fourth is refused.
    untrusted = instance_env(database_url, tmp_path / "data", base, "a", **limits) | {"FORWARDED_ALLOW_IPS": "10.9.8.7"}
    with portal_process(untrusted, free_port(), tmp_path / "a") as portal:
        assert hammer(portal)[-1] == 429
    # Control: where 127.0.0.1 is the trusted proxy, each forwarded address is its own client.
    trusted = instance_env(database_url, tmp_path / "data", base, "b", **limits)
    with portal_process(trusted, free_port(), tmp_path / "b") as portal:
        assert 429 not in hammer(portal)
