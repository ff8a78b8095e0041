"""Uninstall/freeze webhooks from YClients: deliveries, idempotency, the worker."""
