"""What support staff see and fix, in SQL: counts, the funnel, who needs attention, salons,
one salon, and the one state change staff make directly on a salon (mark for retry).

Read SQL for the dashboard and the admin API. "Needs attention" is computed here, in one
place, so the dashboard and the API agree on it. Every query is a fixed text: filters, the
page and the period are bound parameters, so one query has one spelling and one plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from portal.platform.database import Connection, Pool
from portal.salons import event_store as events
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.salons.status import IntegrationStatus
from portal.web.request_input import parse_id, storable_text
from portal.whatsapp.link import LinkStatus
from portal.whatsapp.phones import mask_phone

STATUSES = tuple(s.value for s in IntegrationStatus)
LINK_STATUSES = tuple(s.value for s in LinkStatus)
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
  WHEN s.integration_status = 'pending_whatsapp' AND l.status IN ('starting', 'awaiting_scan', 'passkey', 'linking')
       AND l.updated_at < now() - interval '{STUCK_AFTER}' THEN 'stuck in ' || l.status
END"""

# The queries below are composed once, at import, from the constants above and nothing
# else: no value ever enters their text (hence the S608 waivers).
_SALON_ROW = f"""
SELECT s.id, s.yclients_salon_id, s.name, s.integration_status, s.landed_at, s.activated_at, s.last_error,
       s.api_key_hash IS NOT NULL AS api_key_set, s.install_generation, s.owner_user_id, s.install_lead_id,
       s.install_confirmed, s.owner_bound_at,
       (SELECT x.yclients_salon_id FROM salons x WHERE x.id = s.install_lead_id) AS lead_yclients_salon_id,
       (SELECT count(*) FROM salons b WHERE b.install_lead_id = s.id) AS branch_count,
       COALESCE(l.status, 'idle') AS link_status, l.phone, l.last_error AS link_error, l.updated_at AS link_updated_at,
       e.event_type AS last_event, e.created_at AS last_event_at,
       {_ATTENTION} AS attention
FROM salons s
LEFT JOIN whatsapp_links l ON l.salon_id = s.id
LEFT JOIN LATERAL (SELECT event_type, created_at FROM marketplace_events
                   WHERE salon_id = s.id ORDER BY created_at DESC, id DESC LIMIT 1) e ON true
"""

# $1 status, $2 YClients id, $3 name pattern, $5 WhatsApp link status (each NULL for "any"),
# $4 attention only.
_FILTER = f"""
WHERE ($1::text IS NULL OR s.integration_status = $1)
  AND ($2::bigint IS NULL OR s.yclients_salon_id = $2)
  AND ($3::text IS NULL OR s.name ILIKE $3)
  AND (NOT $4::boolean OR ({_ATTENTION}) IS NOT NULL)
  AND ($5::text IS NULL OR COALESCE(l.status, 'idle') = $5)
"""

_COUNT = f"SELECT count(*) FROM salons s LEFT JOIN whatsapp_links l ON l.salon_id = s.id {_FILTER}"
_PAGE = (f"{_SALON_ROW} {_FILTER} ORDER BY ({_ATTENTION}) IS NULL, s.updated_at DESC, s.id DESC"
         " LIMIT $6 OFFSET $7")
_ONE = f"{_SALON_ROW} WHERE s.yclients_salon_id = $1"
_NEEDING_ATTENTION = f"{_SALON_ROW} WHERE ({_ATTENTION}) IS NOT NULL ORDER BY s.updated_at ASC LIMIT 20"

# $1 'today' (since midnight, the database's day) or 'week' (the last seven days).
_FUNNEL = """
SELECT count(DISTINCT salon_id) FILTER (WHERE event_type = 'landed') AS landed,
       count(DISTINCT salon_id) FILTER (WHERE event_type = 'qr_shown') AS qr_shown,
       count(DISTINCT salon_id) FILTER (WHERE event_type = 'passkey_asked') AS passkey,
       count(DISTINCT salon_id) FILTER (WHERE event_type = 'whatsapp_connected') AS linked,
       count(DISTINCT salon_id) FILTER (WHERE event_type = 'integration_activated') AS active
FROM marketplace_events
WHERE created_at >= CASE $1::text WHEN 'today' THEN date_trunc('day', now()) ELSE now() - interval '7 days' END
"""


@dataclass(frozen=True)
class SalonFilter:
    status: str | None = None
    q: str | None = None
    page: int = 1
    attention_only: bool = False
    link: str | None = None  # the WhatsApp link's status


class BadFilter(ValueError):
    pass


def parse_filter(params: Mapping[str, str]) -> SalonFilter:
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadFilter(f"status must be one of {', '.join(STATUSES)}")
    q = (params.get("q") or "").strip()[:100] or None
    if q is not None and not storable_text(q):
        raise BadFilter("the search text must not contain NUL characters")
    link = params.get("link") or None
    if link is not None and link not in LINK_STATUSES:
        raise BadFilter(f"link must be one of {', '.join(LINK_STATUSES)}")
    page = parse_id(params.get("page") or "1", maximum=100_000)
    if page is None:
        raise BadFilter("page must be a number from 1 to 100000")
    return SalonFilter(status=status, q=q, page=page, attention_only=params.get("attention") == "1", link=link)


def _escape_like(text: str) -> str:
    # The search box is text, not a pattern: % and _ match themselves.
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_args(f: SalonFilter) -> tuple[str | None, int | None, str | None, bool, str | None]:
    """The search box holds either a YClients id (digits) or part of a name."""
    by_id = parse_id(f.q)  # digits within bigint; anything else is part of a name
    by_name = "%" + _escape_like(f.q) + "%" if f.q and by_id is None else None
    return f.status, by_id, by_name, f.attention_only, f.link


def _salon_dict(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "yclients_salon_id": row["yclients_salon_id"], "name": row["name"],
        "integration_status": row["integration_status"], "whatsapp_status": row["link_status"],
        "phone": mask_phone(row["phone"]), "landed_at": row["landed_at"], "activated_at": row["activated_at"],
        "last_event": row["last_event"], "last_event_at": row["last_event_at"],
        "last_error": row["last_error"] or row["link_error"], "attention": row["attention"],
        "api_key_set": row["api_key_set"],  # whether, never what: no part of the key is shown
        # A chain's install: the branch that leads it (this one is a branch), or how many
        # branches this one leads.
        "lead_yclients_salon_id": row["lead_yclients_salon_id"], "branch_count": row["branch_count"],
    }


async def salons_page(pool: Pool, f: SalonFilter) -> tuple[list[dict[str, Any]], int]:
    """One page of salons (those needing attention first) and how many match in all."""
    args = _filter_args(f)
    async with pool.acquire() as conn:
        total: int = await conn.fetchval(_COUNT, *args)
        rows = await conn.fetch(_PAGE, *args, PAGE_SIZE, (f.page - 1) * PAGE_SIZE)
    return [_salon_dict(r) for r in rows], total


async def salon_detail(pool: Pool, yclients_salon_id: YclientsSalonId) -> dict[str, Any] | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(_ONE, yclients_salon_id)
        if row is None:
            return None
        timeline = await events.for_salon(conn, SalonPk(row["id"]), limit=100)
        install = await conn.fetch(
            "SELECT yclients_salon_id, name, integration_status FROM salons"
            " WHERE id = COALESCE($2::bigint, $1::bigint) OR install_lead_id = COALESCE($2::bigint, $1::bigint)"
            " ORDER BY install_lead_id NULLS FIRST, yclients_salon_id", row["id"], row["install_lead_id"])
        users = await conn.fetch(
            "SELECT yclients_user_id, name, last_landed_at FROM marketplace_users WHERE salon_id = $1"
            " ORDER BY last_landed_at DESC LIMIT 20", row["id"])
    return _salon_dict(row) | {"install_generation": row["install_generation"],
                               # Who may open the salon (onboarding/admission.py), and whether YClients
                               # reported the install pending when they were bound (False: not checked).
                               "owner_user_id": row["owner_user_id"], "owner_bound_at": row["owner_bound_at"],
                               "install_confirmed": row["install_confirmed"],
                               "users": [dict(u) for u in users],
                               "install_branches": [dict(b) for b in install] if len(install) > 1 else [],
                               "events": timeline}


async def overview(pool: Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        counts = {r["integration_status"]: r["n"] for r in await conn.fetch(
            "SELECT integration_status, count(*) AS n FROM salons GROUP BY 1")}
        # A chain's install is one install of several branches (salons).
        installs = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE install_lead_id IS NULL) AS installs, count(*) AS branches,"
            " count(*) FILTER (WHERE install_lead_id IS NULL AND integration_status = 'active') AS active_installs,"
            " count(*) FILTER (WHERE integration_status = 'active') AS active_branches"
            " FROM salons WHERE integration_status <> 'uninstalled'")
        funnel = {period: dict(await conn.fetchrow(_FUNNEL, period) or {}) for period in ("today", "week")}
        attention = await conn.fetch(_NEEDING_ATTENTION)
    return {"counts": {s: counts.get(s, 0) for s in STATUSES}, "funnel": funnel, "installs": dict(installs or {}),
            "attention": [_salon_dict(r) for r in attention]}


async def webhook_backlog(pool: Pool, failing_after: int = 3) -> dict[str, Any]:
    """Deliveries not yet done (and those that keep failing), and gateway cleanups pending."""
    async with pool.acquire() as conn:
        pending = await conn.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE status IN ('pending', 'processing')")
        failing = await conn.fetch(
            "SELECT id, yclients_salon_id, event, attempts, last_error, received_at, next_attempt_at"
            " FROM webhook_deliveries WHERE status IN ('pending', 'processing') AND attempts >= $1"
            " ORDER BY received_at LIMIT 50", failing_after)
        cleanups = await conn.fetch(
            "SELECT yclients_salon_id, name, gateway_cleanup_pending_since FROM salons"
            " WHERE gateway_cleanup_pending_since IS NOT NULL ORDER BY gateway_cleanup_pending_since LIMIT 50")
    return {"pending": pending, "failing": [dict(r) for r in failing], "cleanups": [dict(r) for r in cleanups]}


async def mark_for_retry(conn: Connection, salon_pk: SalonPk) -> bool:
    """Back to the owner's Activate button, only from a failed activation; the landing window
    starts again so the owner has the marketplace's hour to press it. True if it changed."""
    changed = await conn.fetchval(
        "UPDATE salons SET integration_status = 'pending_whatsapp', last_error = NULL, landed_at = now(),"
        " updated_at = now() WHERE id = $1 AND integration_status = 'activation_failed' RETURNING id", salon_pk)
    return changed is not None
