"""Where a salon's integration with YClients stands: the `salons.integration_status` values.

The table's CHECK constraint (migrations/001_salons.sql) holds the same words; a status is
compared and stored as this enum, never as a bare string.
"""

from __future__ import annotations

from enum import StrEnum


class IntegrationStatus(StrEnum):
    """pending_whatsapp → activating → active, with activation_failed (staff or the owner
    retry), frozen (YClients froze the install: unpaid) and uninstalled (the install ended)."""

    PENDING_WHATSAPP = "pending_whatsapp"
    ACTIVATING = "activating"
    ACTIVE = "active"
    ACTIVATION_FAILED = "activation_failed"
    FROZEN = "frozen"
    UNINSTALLED = "uninstalled"
