"""Tests of the WhatsApp gateway layer: neutral states, the WAHA adapter, the simulator."""
