"""Salon onboarding portal: YClients marketplace salons link WhatsApp and activate."""

__version__ = "0.1.0"
