"""YClients' webhooks (uninstall, freeze): checked, stored, answered; processed from the row.

YClients sends `{"salon_id", "application_id", "event", "partner_token"}` with no event id
and no timestamp. A delivery is committed to PostgreSQL before the 2xx goes out; its
idempotency key is a hash of the event, the salon, the salon's *install generation* (bumped
by each activation) and the canonical JSON of the data. So a retry of one delivery is a
duplicate, while a real second uninstall after a reinstall — byte-identical on the wire —
has a new key because the generation moved.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

KNOWN_EVENTS = ("uninstall", "freeze")
MAX_BODY_BYTES = 4096


class WebhookRefused(Exception):
    def __init__(self, status: int, code: str, reason: str):
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


@dataclass(frozen=True)
class Delivery:
    salon_id: int
    application_id: int
    event: str

    def canonical(self) -> str:
        return json.dumps({"application_id": self.application_id, "event": self.event, "salon_id": self.salon_id},
                          sort_keys=True, separators=(",", ":"))


def _int_field(data: dict, name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WebhookRefused(400, "MALFORMED", f"{name} must be an integer")
    if not 0 < value <= 2**31 - 1:
        raise WebhookRefused(400, "MALFORMED", f"{name} is out of range")
    return value


def parse(body: bytes, *, partner_token: str, application_id: int) -> Delivery:
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRefused(400, "TOO_LARGE", "body is too large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused(400, "MALFORMED", "body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookRefused(400, "MALFORMED", "body must be a JSON object")
    token, event = data.get("partner_token"), data.get("event")
    if not isinstance(token, str) or not token:
        raise WebhookRefused(400, "MALFORMED", "partner_token must be a string")
    if not isinstance(event, str) or not event or len(event) > 64:
        raise WebhookRefused(400, "MALFORMED", "event must be a short string")
    salon_id, app_id = _int_field(data, "salon_id"), _int_field(data, "application_id")
    # Authenticate before anything is stored; both checks in constant time.
    token_ok = hmac.compare_digest(token.encode(), partner_token.encode())
    app_ok = hmac.compare_digest(str(app_id).encode(), str(application_id).encode())
    if not (token_ok and app_ok):
        raise WebhookRefused(403, "FORBIDDEN", "partner token or application id does not match")
    return Delivery(salon_id=salon_id, application_id=app_id, event=event)


def idempotency_key(delivery: Delivery, install_generation: int) -> str:
    material = f"{delivery.event}|{delivery.salon_id}|{install_generation}|{delivery.canonical()}"
    return hashlib.sha256(material.encode()).hexdigest()


async def store(pool, delivery: Delivery, *, ttl_h: float) -> tuple[int | None, bool]:
    """Commit the delivery; (id, is_new). A key past its TTL counts as new again."""
    async with pool.acquire() as conn, conn.transaction():
        generation = await conn.fetchval(
            "SELECT install_generation FROM salons WHERE yclients_salon_id = $1", delivery.salon_id) or 0
        status = "pending" if delivery.event in KNOWN_EVENTS else "ignored"
        row = await conn.fetchrow(
            """
                INSERT INTO webhook_deliveries (idempotency_key, yclients_salon_id, event, install_generation,
                                                status, expires_at, processed_at)
                VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6),
                        CASE WHEN $5 = 'ignored' THEN now() END)
                ON CONFLICT (idempotency_key) DO UPDATE SET
                    status = EXCLUDED.status, attempts = 0, next_attempt_at = now(), locked_until = NULL,
                    last_error = NULL, received_at = now(), processed_at = EXCLUDED.processed_at,
                    expires_at = EXCLUDED.expires_at
                WHERE webhook_deliveries.expires_at < now()
                RETURNING id
                """,
            idempotency_key(delivery, generation), delivery.salon_id, delivery.event, generation, status,
            ttl_h * 3600.0)
    return (row["id"], True) if row else (None, False)
