"""The gateway adapters: one module per WhatsApp HTTP gateway, each implementing the
`WhatsAppGateway` protocol of `portal.whatsapp.link` (the interface every adapter speaks).

Adding a gateway touches this folder (its adapter) and `tests/helpers/gateways/` (its
fake); the conformance suite runs the same scenarios against every adapter.
"""
