"""The demo sandbox: a local YClients marketplace stand-in, mounted only in demo mode.

Its pages and the partner API stand-in are in the route list of `portal.sandbox.routes`,
assembled by `app.py`.
"""

from __future__ import annotations

from portal.sandbox.marketplace_state import SandboxMarketplace

__all__ = ["SandboxMarketplace"]
