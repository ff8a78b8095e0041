"""`python -m portal serve` as an operator or a newcomer runs it: the demo staff login in
the banner, and several worker processes sharing one database and one breaker."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import httpx

from portal.__main__ import with_demo_staff
from portal.platform.settings import load_settings
from tests.helpers.gateways.fake_waha import create_fake_waha
from tests.helpers.portal_process import ROOT, _env, portal_process
from tests.helpers.servers import free_port, serve

LOGIN = re.compile(r"user (\S+), password (\S+)\)")


def sign_in(url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=10)
    r = client.post("/admin/login", data={"username": username, "password": password},
                    headers={"Origin": url}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


def stop(running) -> None:
    """A graceful stop, as an operator's: the portal stops the embedded PostgreSQL it started
    (a SIGKILL would leave that server running after the test)."""
    running.signal(signal.SIGTERM)
    running.process.wait(timeout=30)


def banner_login(running) -> tuple[str, str]:
    found = LOGIN.search(running.log_path.read_text())
    assert found, running.log_path.read_text()[-2000:]
    return found.group(1), found.group(2)


def test_make_run_prints_a_demo_staff_login_that_works_and_survives_a_restart(tmp_path):
    env = {"PORTAL_DATA_DIR": str(tmp_path / "data"), "SANDBOX": "true"}
    port = free_port()
    with portal_process(env | {"PORTAL_BASE_URL": f"http://127.0.0.1:{port}"}, port, tmp_path / "one",
                        startup_timeout_s=60) as running:
        username, password = banner_login(running)
        staff = sign_in(running.url, username, password)
        assert staff.get("/admin").status_code == 200
        staff.close()
        stop(running)
    port = free_port()
    with portal_process(env | {"PORTAL_BASE_URL": f"http://127.0.0.1:{port}"}, port, tmp_path / "two",
                        startup_timeout_s=60) as running:
        assert banner_login(running) == (username, password)
        stop(running)


def test_production_never_gets_a_demo_staff_user(tmp_path):
    settings = load_settings({"YCLIENTS_PARTNER_TOKEN": "p", "JWT_SECRET": "j" * 32, "SESSION_SECRET": "s" * 32,
                              "API_KEY_SECRET": "k" * 32, "WAHA_URL": "http://127.0.0.1:1",
                              "WAHA_WEBHOOK_TOKEN": "t" * 24, "PORTAL_DATA_DIR": str(tmp_path)}, env_file=None)
    same, login = with_demo_staff(settings)
    assert login is None and same.admin_username is None and same.admin_password_hash is None
    assert not (tmp_path / "demo-staff.json").exists()
    configured = load_settings({"PORTAL_DATA_DIR": str(tmp_path), "ADMIN_USERNAME": "anna"}, env_file=None)
    assert with_demo_staff(configured)[1] is None  # a configured login is never replaced


def test_two_workers_share_the_embedded_database_and_the_breaker(tmp_path):
    waha_app, _ = create_fake_waha("waha-key")
    port = free_port()
    env = {"PORTAL_DATA_DIR": str(tmp_path / "data"), "SANDBOX": "true", "WHATSAPP_GATEWAY": "waha",
           "WAHA_API_KEY": "waha-key", "WAHA_WEBHOOK_HMAC_KEY": "hook-key",
           "PORTAL_BASE_URL": f"http://127.0.0.1:{port}"}
    with serve(waha_app) as waha_url, portal_process(env | {"WAHA_URL": waha_url}, port, tmp_path / "run",
                                                     startup_timeout_s=90, args=("--workers", "2")) as running:
        username, password = banner_login(running)
        deadline = time.monotonic() + 30
        staff = sign_in(running.url, username, password)
        while "of 2 instances running" not in (page := staff.get("/admin/system").text):
            assert time.monotonic() < deadline, page[-1500:]
            time.sleep(0.2)  # each worker registers itself at start; wait for the second
        staff.close()
        stop(running)


def test_workers_are_refused_with_the_in_process_simulator(tmp_path):
    result = subprocess.run([sys.executable, "-m", "portal", "serve", "--workers", "2"], cwd=tmp_path,
                            env=_env({"PORTAL_DATA_DIR": str(tmp_path), "SANDBOX": "true",
                                      "PYTHONPATH": str(ROOT)}),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "simulator" in result.stderr
