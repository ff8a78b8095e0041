"""The demo sandbox: a local YClients marketplace stand-in, mounted only in demo mode."""

from __future__ import annotations

from starlette.routing import Mount, Route

from portal.sandbox import pages
from portal.sandbox.marketplace_state import SandboxMarketplace
from portal.sandbox.partner_api import create_partner_api

__all__ = ["SandboxMarketplace", "sandbox_routes"]


def sandbox_routes(market: SandboxMarketplace) -> list:
    return [
        Route("/sandbox/", pages.marketplace),
        Route("/sandbox/install/{salon_id}", pages.install),
        Route("/sandbox/install-chain", pages.install_chain),
        Route("/sandbox/installed/{salon_id}", pages.installed),
        Route("/sandbox/whatsapp/{salon_id}/scan", pages.simulator_scan, methods=["POST"]),
        Route("/sandbox/whatsapp/{salon_id}/logout", pages.simulator_logout, methods=["POST"]),
        Route("/sandbox/whatsapp/fault", pages.simulator_fault, methods=["POST"]),
        Route("/sandbox/partner/fault", pages.partner_fault, methods=["POST"]),
        Route("/sandbox/partner/answer", pages.install_answer, methods=["POST"]),
        Route("/sandbox/webhooks/{salon_id}", pages.send_webhook, methods=["POST"]),
        Mount("/sandbox/api", app=create_partner_api(market)),
    ]
