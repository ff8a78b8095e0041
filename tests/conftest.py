"""Fixtures shared by the whole suite: the PostgreSQL server, a database per test, settings
and apps built per test (nothing is shared between two apps)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from portal.platform.settings import load_settings
from tests.helpers.database import Db, TestServer, embedded_server, run


@pytest.fixture(scope="session")
def pg_server():
    url = os.environ.get("DATABASE_URL")
    if url:
        server = TestServer(url)
        run(server.create_template())
        yield server
        return
    with embedded_server() as admin_dsn:
        server = TestServer(admin_dsn)
        run(server.create_template())
        yield server


@pytest.fixture
def database_url(pg_server):
    dsn = run(pg_server.create_database())
    yield dsn
    run(pg_server.drop_database(dsn))


@pytest.fixture
def db(database_url) -> Db:
    return Db(database_url)


# Fast simulator timings: a test walks a QR cycle in milliseconds, not minutes.
FAST_ENV = {
    "SIMULATOR_STARTING_S": "0.05",
    "SIMULATOR_QR_FIRST_TTL_S": "60",
    "SIMULATOR_QR_NEXT_TTL_S": "20",
    "SIMULATOR_LINKING_S": "0.05",
    "QR_WAIT_INITIAL_S": "0.02",
    "LOG_LEVEL": "WARNING",
}


@pytest.fixture
def make_settings(database_url, tmp_path: Path):
    """Build settings as the environment would, on this test's own database."""

    def build(**env: str):
        base = {"DATABASE_URL": database_url, "PORTAL_DATA_DIR": str(tmp_path / "data"),
                "HEALTH_CHECK_TOKEN": "health-token-for-tests", **FAST_ENV}
        return load_settings({**base, **env}, env_file=None)

    return build


@pytest.fixture
def settings(make_settings):
    return make_settings()


@pytest.fixture
def client(settings):
    from starlette.testclient import TestClient

    from portal.app import create_app

    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture
def waha():
    """A fake WAHA over real HTTP on 127.0.0.1 (API key "waha-key"), sessions starting
    straight into SCAN_QR_CODE: (base URL, its state to steer)."""
    from tests.helpers.gateways.fake_waha import create_fake_waha
    from tests.helpers.servers import serve

    app, state = create_fake_waha("waha-key")
    state.status_on_start = "SCAN_QR_CODE"
    with serve(app) as url:
        yield url, state


@pytest.fixture
def partner():
    """A fake YClients over real HTTP on 127.0.0.1: (base URL, its marketplace state)."""
    from tests.helpers.partner import partner_server

    with partner_server() as (url, market):
        yield url, market


@pytest.fixture
def partner_env(partner):
    """Settings that point a portal at the `partner` fake, with its token and application."""
    from tests.helpers.partner import APP_ID, PARTNER_TOKEN

    return {"SANDBOX": "true", "YCLIENTS_PARTNER_TOKEN": PARTNER_TOKEN, "YCLIENTS_API_URL": partner[0],
            "YCLIENTS_APP_ID": str(APP_ID), "YCLIENTS_TIMEOUT_S": "2"}


def chromium_path() -> str | None:
    """A system Chromium where there is one; None lets Playwright use its own browser."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: Playwright's sync API keeps an event loop running in the main
    thread for the rest of the session, and asyncio tests cannot start their own after it."""
    browser = [i for i in items if "/tests/browser/" in str(i.path)]
    for item in browser:
        item.add_marker("browser")
    items[:] = [i for i in items if i not in browser] + browser
