"""What an activation answers: one `Outcome` per case, with the sentence the owner reads."""

from __future__ import annotations

from dataclasses import dataclass

CONCURRENT_RETRY_AFTER_S = 5
# YClients' status could not be read: the owner tries again in a while, never on a guess.
STATUS_RETRY_AFTER_S = 30


@dataclass(frozen=True)
class Outcome:
    status_code: int
    code: str
    message_key: str | None = None  # what the owner reads (i18n key)
    redirect_url: str | None = None
    retry_after: int | None = None
    already_active: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code == 200


ALREADY_ACTIVE = Outcome(200, "ALREADY_ACTIVE", already_active=True)
CONCURRENT = Outcome(409, "CONCURRENT_ACTIVATION", "activation.in_progress", retry_after=CONCURRENT_RETRY_AFTER_S)
PARTNER_MESSAGES = {
    "timeout": "activation.partner_timeout",
    "unreachable": "activation.partner_unreachable",
    "auth": "activation.partner_config",
    "already_installed": "activation.partner_already_installed",
}
NOT_FOUND = Outcome(404, "SALON_NOT_FOUND", "activation.not_found")
BUSY = Outcome(503, "ACTIVATION_BUSY", "activation.busy", retry_after=2)
# YClients' install status, when it forbids a callback.
NOT_INSTALLED = Outcome(410, "NOT_INSTALLED_AT_YCLIENTS", "activation.not_installed")
FROZEN = Outcome(409, "INSTALL_FROZEN", "activation.frozen")


def status_unavailable(message_key: str) -> Outcome:
    return Outcome(503, "PARTNER_STATUS_UNAVAILABLE", message_key, retry_after=STATUS_RETRY_AFTER_S)
