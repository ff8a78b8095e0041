"""Activating the integration with YClients: the transaction and the partner client."""
