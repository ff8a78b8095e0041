"""What support staff see: counts, the funnel, who needs attention, salons, one salon.

Read-only SQL for the dashboard and the admin API. "Needs attention" is computed here, in
one place, so the dashboard and the API agree on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from portal.whatsapp.phones import mask_phone

STATUSES = ("pending_whatsapp", "activating", "active", "activation_failed", "frozen", "uninstalled")
PAGE_SIZE = 25
STUCK_AFTER = "10 minutes"

# Why a salon needs a human, as a sentence for staff; the order is the urgency.
_ATTENTION = f"""
CASE
  WHEN s.integration_status = 'activation_failed' THEN 'activation failed'
  WHEN l.status = 'logged_out' THEN 'WhatsApp logged out'
  WHEN l.status = 'expired' THEN 'QR code expired'
  WHEN l.status = 'failed' THEN 'WhatsApp session failed'
  WHEN s.integration_status = 'activating' AND s.updated_at < now() - interval '{STUCK_AFTER}' THEN 'stuck activating'
  WHEN s.integration_status = 'pending_whatsapp' AND l.status IN ('starting', 'awaiting_scan', 'linking')
       AND l.updated_at < now() - interval '{STUCK_AFTER}' THEN 'stuck in ' || l.status
END"""

_SALON_ROW = f"""
SELECT s.id, s.yclients_salon_id, s.name, s.integration_status, s.landed_at, s.activated_at, s.last_error,
       s.api_key_prefix, s.install_generation,
       COALESCE(l.status, 'idle') AS link_status, l.phone, l.last_error AS link_error, l.updated_at AS link_updated_at,
       e.event_type AS last_event, e.created_at AS last_event_at,
       {_ATTENTION} AS attention
FROM salons s
LEFT JOIN whatsapp_links l ON l.salon_id = s.id
LEFT JOIN LATERAL (SELECT event_type, created_at FROM marketplace_events
                   WHERE salon_id = s.id ORDER BY created_at DESC, id DESC LIMIT 1) e ON true
"""


@dataclass(frozen=True)
class SalonFilter:
    status: str | None = None
    q: str | None = None
    page: int = 1
    attention_only: bool = False


class BadFilter(ValueError):
    pass


def parse_filter(params) -> SalonFilter:
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadFilter(f"status must be one of {', '.join(STATUSES)}")
    q = (params.get("q") or "").strip()[:100] or None
    raw_page = params.get("page") or "1"
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= 100_000:
        raise BadFilter("page must be a positive number")
    return SalonFilter(status=status, q=q, page=int(raw_page), attention_only=params.get("attention") == "1")


def _escape_like(text: str) -> str:
    # The search box is text, not a pattern: % and _ match themselves.
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _salon_dict(row) -> dict:
    return {
        "yclients_salon_id": row["yclients_salon_id"], "name": row["name"],
        "integration_status": row["integration_status"], "whatsapp_status": row["link_status"],
        "phone": mask_phone(row["phone"]), "landed_at": row["landed_at"], "activated_at": row["activated_at"],
        "last_event": row["last_event"], "last_event_at": row["last_event_at"],
        "last_error": row["last_error"] or row["link_error"], "attention": row["attention"],
        "api_key_set": row["api_key_prefix"] is not None,
    }


async def salons_page(pool, f: SalonFilter) -> tuple[list[dict], int]:
    where, args = [], []
    if f.status:
        args.append(f.status)
        where.append(f"s.integration_status = ${len(args)}")
    if f.q:
        if f.q.isdigit():
            args.append(int(f.q))
            where.append(f"s.yclients_salon_id = ${len(args)}")
        else:
            args.append("%" + _escape_like(f.q) + "%")
            where.append(f"s.name ILIKE ${len(args)}")
    if f.attention_only:
        where.append(f"({_ATTENTION}) IS NOT NULL")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    async with pool.acquire() as conn:
        total = await conn.fetchval(
            f"SELECT count(*) FROM salons s LEFT JOIN whatsapp_links l ON l.salon_id = s.id {clause}", *args)
        rows = await conn.fetch(
            f"{_SALON_ROW} {clause} ORDER BY ({_ATTENTION}) IS NULL, s.updated_at DESC, s.id DESC"
            f" LIMIT {PAGE_SIZE} OFFSET {(f.page - 1) * PAGE_SIZE}", *args)
    return [_salon_dict(r) for r in rows], total


async def salon_detail(pool, yclients_salon_id: int) -> dict | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(f"{_SALON_ROW} WHERE s.yclients_salon_id = $1", yclients_salon_id)
        if row is None:
            return None
        events = await conn.fetch(
            "SELECT event_type, payload, created_at FROM marketplace_events WHERE salon_id = $1"
            " ORDER BY created_at DESC, id DESC LIMIT 100", row["id"])
    detail = _salon_dict(row) | {"install_generation": row["install_generation"],
                                 "api_key_prefix": row["api_key_prefix"]}
    detail["events"] = [{"event_type": e["event_type"], "payload": json.loads(e["payload"]),
                         "created_at": e["created_at"]} for e in events]
    return detail


async def overview(pool) -> dict:
    async with pool.acquire() as conn:
        counts = {r["integration_status"]: r["n"] for r in await conn.fetch(
            "SELECT integration_status, count(*) AS n FROM salons GROUP BY 1")}
        funnel = {}
        for label, since in (("today", "date_trunc('day', now())"), ("week", "now() - interval '7 days'")):
            row = await conn.fetchrow(f"""
                SELECT count(DISTINCT salon_id) FILTER (WHERE event_type = 'landed') AS landed,
                       count(DISTINCT salon_id) FILTER (WHERE event_type = 'qr_shown') AS qr_shown,
                       count(DISTINCT salon_id) FILTER (WHERE event_type = 'whatsapp_connected') AS linked,
                       count(DISTINCT salon_id) FILTER (WHERE event_type = 'integration_activated') AS active
                FROM marketplace_events WHERE created_at >= {since}""")
            funnel[label] = dict(row)
        attention = await conn.fetch(
            f"{_SALON_ROW} WHERE ({_ATTENTION}) IS NOT NULL ORDER BY s.updated_at ASC LIMIT 20")
    return {"counts": {s: counts.get(s, 0) for s in STATUSES}, "funnel": funnel,
            "attention": [_salon_dict(r) for r in attention]}


async def webhook_backlog(pool, failing_after: int = 3) -> dict:
    """Deliveries not yet done (and those that keep failing), and gateway cleanups pending."""
    async with pool.acquire() as conn:
        pending = await conn.fetchval("SELECT count(*) FROM webhook_deliveries WHERE status IN ('pending', 'processing')")
        failing = await conn.fetch(
            "SELECT id, yclients_salon_id, event, attempts, last_error, received_at, next_attempt_at"
            " FROM webhook_deliveries WHERE status IN ('pending', 'processing') AND attempts >= $1"
            " ORDER BY received_at LIMIT 50", failing_after)
        cleanups = await conn.fetch(
            "SELECT yclients_salon_id, name, gateway_cleanup_pending_since FROM salons"
            " WHERE gateway_cleanup_pending_since IS NOT NULL ORDER BY gateway_cleanup_pending_since LIMIT 50")
    return {"pending": pending, "failing": [dict(r) for r in failing], "cleanups": [dict(r) for r in cleanups]}
