"""Linking a salon's WhatsApp number through a WhatsApp HTTP gateway.

`link` holds the gateway-neutral states, errors and the `WhatsAppGateway` protocol;
`gateways/` holds the adapters: `waha` and `evolution` for real WAHA and Evolution API
servers, `simulator` for the in-process stand-in used in demo mode and tests.
"""

from portal.whatsapp.gateways.evolution import EvolutionGateway
from portal.whatsapp.gateways.simulator import SimulatedGateway
from portal.whatsapp.gateways.waha import WahaGateway
from portal.whatsapp.link import (
    GatewayAuthError,
    GatewayConflict,
    GatewayError,
    GatewayUnavailable,
    InvalidWebhook,
    LinkState,
    LinkStatus,
    MalformedWebhook,
    SessionNotFound,
    StatusUpdate,
    WhatsAppGateway,
    session_name,
    validate_phone_digits,
)

__all__ = [
    "EvolutionGateway",
    "GatewayAuthError",
    "GatewayConflict",
    "GatewayError",
    "GatewayUnavailable",
    "InvalidWebhook",
    "LinkState",
    "LinkStatus",
    "MalformedWebhook",
    "SessionNotFound",
    "SimulatedGateway",
    "StatusUpdate",
    "WahaGateway",
    "WhatsAppGateway",
    "session_name",
    "validate_phone_digits",
]
