"""Browser tests: a live portal under uvicorn, driven by real Chromium through Playwright.

The system Chromium is used where installed (Playwright cannot download its own browser
on our CI machines); elsewhere Playwright's bundled browser is used.
"""

from __future__ import annotations

import pytest

from portal.app import create_app
from tests.conftest import chromium_path
from tests.helpers.servers import free_port, serve


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    args = dict(browser_type_launch_args)
    path = chromium_path()
    if path:
        args["executable_path"] = path
    # As root in a container, and with no outside network to phone home to.
    args["args"] = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run"]
    return args


@pytest.fixture
def live_portal(make_settings):
    """Start a portal on a free port; yields (base_url, app)."""

    def start(**env):
        port = free_port()
        settings = make_settings(PORTAL_BASE_URL=f"http://127.0.0.1:{port}", **env)
        app = create_app(settings)
        ctx = serve(app, port=port)
        url = ctx.__enter__()
        started.append(ctx)
        return url, app, settings

    started: list = []
    yield start
    for ctx in started:
        ctx.__exit__(None, None, None)
