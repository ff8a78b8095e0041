"""Linking a salon's WhatsApp number through a WhatsApp HTTP gateway.

`link` holds the gateway-neutral states, errors and the `WhatsAppGateway` protocol;
`gateways/` holds the adapters: `waha` and `evolution` for real WAHA and Evolution API
servers, `simulator` for the in-process stand-in used in demo mode and tests.
"""
