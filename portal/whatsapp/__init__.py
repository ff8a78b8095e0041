"""Linking a salon's WhatsApp number through a WhatsApp HTTP gateway.

`link` holds the gateway-neutral states, errors and the `WhatsAppGateway` protocol;
`waha` is the adapter for a real WAHA server; `simulator` is the in-process stand-in
used in demo mode and tests.
"""

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
