"""Fakes of the WhatsApp gateways: small real HTTP servers built from each gateway's docs."""
