"""YClients' lifecycle callbacks (uninstall, freeze, payment): checked, stored, answered;
processed from the row.

YClients sends `{"salon_id", "application_id", "event", "partner_token"}` with no event id
and no timestamp; `payment` adds payment and period data (and a `sign`), whose exact names
are not in the public docs: its other short scalar fields are kept, none is required
(Altegio's integration reference, `altegio/altegio-integrations-hub-mcp`, docs/webhooks.md).
A delivery is committed to PostgreSQL before the 2xx goes out; its idempotency key is a
hash of the event, the salon, the salon's *install generation* (bumped by each activation)
and the canonical JSON of the data. So a retry of one delivery is a duplicate, while a real
second uninstall after a reinstall — byte-identical on the wire — has a new key because the
generation moved, and next month's payment has a new key because its period moved.

An *entity* webhook (`{"company_id", "resource", "resource_id", "status", "data"}`: an
appointment, a client… changed) belongs to the receivers given at activation, not here; one
that arrives all the same is recognised by its shape and answered "ignored" (`EntityWebhook`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any

from portal.platform.database import Pool
from portal.salons import store as salons
from portal.salons.ids import YclientsSalonId
from portal.web.request_input import BadInput, parse_json
from portal.yclients_webhooks import store as delivery_store

KNOWN_EVENTS = ("uninstall", "freeze", "payment")
MAX_BODY_BYTES = 4096
# What of a payment's own data is kept: short scalar fields, never the token or the signature.
_DETAIL_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_NOT_DETAILS = frozenset({"salon_id", "application_id", "event", "partner_token", "sign"})
MAX_DETAILS, MAX_DETAIL_CHARS = 16, 64


class WebhookRefused(Exception):
    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


@dataclass(frozen=True)
class Delivery:
    yclients_salon_id: YclientsSalonId
    application_id: int
    event: str
    details: dict[str, Any] = field(default_factory=dict)  # a payment's payment and period data

    def canonical(self) -> str:
        # "salon_id" as YClients spells it: the key must not change with our Python names.
        fields: dict[str, Any] = {"application_id": self.application_id, "event": self.event,
                                  "salon_id": self.yclients_salon_id}
        if self.details:  # absent otherwise: the keys of uninstall and freeze stay as they were
            fields["data"] = self.details
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class EntityWebhook:
    """An entity webhook that reached the lifecycle endpoint; `resource` cut to a safe label."""

    resource: str


def _entity(data: Any) -> EntityWebhook | None:
    if not isinstance(data, dict) or "event" in data or not isinstance(data.get("resource"), str):
        return None
    if "resource_id" not in data and "company_id" not in data:
        return None
    label = re.sub(r"[^a-z0-9_]", "", data["resource"].lower())[:40]
    return EntityWebhook(resource=label or "unknown")


def _details(data: dict[str, Any]) -> dict[str, Any]:
    """A payment's extra fields, tolerated: what looks like a name and a short scalar value."""
    kept: dict[str, Any] = {}
    for name in sorted(data):
        value = data[name]
        if name in _NOT_DETAILS or not _DETAIL_NAME.fullmatch(name) or len(kept) == MAX_DETAILS:
            continue
        if isinstance(value, bool | int | float) or value is None or (
                isinstance(value, str) and len(value) <= MAX_DETAIL_CHARS):
            kept[name] = value
    return kept


def _int_field(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WebhookRefused(400, "MALFORMED", f"{name} must be an integer")
    if not 0 < value <= 2**31 - 1:
        raise WebhookRefused(400, "MALFORMED", f"{name} is out of range")
    return value


def entity_webhook(body: bytes) -> EntityWebhook | None:
    """The body is an entity webhook (whatever its size: it carries the whole record)."""
    try:
        return _entity(parse_json(body))
    except BadInput:
        return None


def parse(body: bytes, *, partner_token: str, application_id: int) -> Delivery:
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRefused(400, "TOO_LARGE", "body is too large")
    try:
        data = parse_json(body)
    except BadInput as exc:
        raise WebhookRefused(400, "MALFORMED", f"body is not JSON this service accepts ({exc})") from None
    if not isinstance(data, dict):
        raise WebhookRefused(400, "MALFORMED", "body must be a JSON object")
    token, event = data.get("partner_token"), data.get("event")
    if not isinstance(token, str) or not token:
        raise WebhookRefused(400, "MALFORMED", "partner_token must be a string")
    if not isinstance(event, str) or not event or len(event) > 64:
        raise WebhookRefused(400, "MALFORMED", "event must be a short string")
    yclients_salon_id, app_id = YclientsSalonId(_int_field(data, "salon_id")), _int_field(data, "application_id")
    # Authenticate before anything is stored; both checks in constant time.
    token_ok = hmac.compare_digest(token.encode(), partner_token.encode())
    app_ok = hmac.compare_digest(str(app_id).encode(), str(application_id).encode())
    if not (token_ok and app_ok):
        raise WebhookRefused(403, "FORBIDDEN", "partner token or application id does not match")
    return Delivery(yclients_salon_id=yclients_salon_id, application_id=app_id, event=event,
                    details=_details(data) if event == "payment" else {})


def idempotency_key(delivery: Delivery, install_generation: int) -> str:
    material = f"{delivery.event}|{delivery.yclients_salon_id}|{install_generation}|{delivery.canonical()}"
    return hashlib.sha256(material.encode()).hexdigest()


async def store(pool: Pool, delivery: Delivery, *, ttl_h: float) -> tuple[int | None, bool]:
    """Commit the delivery; (id, is_new). A key past its TTL counts as new again."""
    async with pool.acquire() as conn, conn.transaction():
        generation = await salons.install_generation(conn, delivery.yclients_salon_id)
        status = "pending" if delivery.event in KNOWN_EVENTS else "ignored"
        delivery_id = await delivery_store.insert_delivery(
            conn, idempotency_key(delivery, generation), delivery.yclients_salon_id, delivery.event, generation,
            status, ttl_h * 3600.0, delivery.details or None)
    return delivery_id, delivery_id is not None
