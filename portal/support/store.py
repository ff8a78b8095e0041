"""What support staff see, in SQL: the salon list, one salon, the overview's counts and the
system page's backlog, read through the view `salon_overview` (migrations/019, this
module's), which says in one place why a salon needs a human, so the dashboard and the API
agree on it.

The SQL returns data, never words: `attention` is a code (ATTENTION_CODES, or NULL), and a
salon `stuck` in a waiting link step says which in its link status; the dashboard says them
with the catalogues' `admin.attention.*`, the admin API with its English phrases. The query
string is read in `filters.py`; the store takes a typed `SalonFilter`. Every query is a
fixed text: filters, the page and the period are bound parameters, so one query has one
spelling and one plan.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from portal.platform.database import Pool
from portal.salons import event_store as events
from portal.salons import marketplace_user_store as users
from portal.salons import store as salons
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.support.filters import STATUSES, SalonFilter
from portal.whatsapp.phones import mask_phone
from portal.yclients_webhooks import store as deliveries

PAGE_SIZE = 25

# Why a salon needs a human, most urgent first (the view's CASE).
ATTENTION_CODES = ("activation_failed", "logged_out", "qr_expired", "session_failed", "stuck_activating", "stuck")

_SALON_ROW = """
SELECT id, yclients_salon_id, name, integration_status, landed_at, activated_at, last_error, api_key_set,
       install_generation, owner_user_id, install_lead_id, install_confirmed, owner_bound_at,
       lead_yclients_salon_id, branch_count, link_status, phone, link_error, link_updated_at,
       last_event, last_event_at, attention
FROM salon_overview
"""

# $1 status, $2 YClients id, $3 name pattern, $5 WhatsApp link status (each NULL for "any"),
# $4 attention only.
_FILTER = """
WHERE ($1::text IS NULL OR integration_status = $1)
  AND ($2::bigint IS NULL OR yclients_salon_id = $2)
  AND ($3::text IS NULL OR name ILIKE $3)
  AND (NOT $4::boolean OR attention IS NOT NULL)
  AND ($5::text IS NULL OR link_status = $5)
"""

# The queries below are composed once, at import, from the constants above and nothing
# else: no value ever enters their text.
_COUNT = f"SELECT count(*) FROM salon_overview {_FILTER}"
_PAGE = f"{_SALON_ROW} {_FILTER} ORDER BY attention IS NULL, updated_at DESC, id DESC LIMIT $6 OFFSET $7"
_ONE = f"{_SALON_ROW} WHERE yclients_salon_id = $1"
_NEEDING_ATTENTION = f"{_SALON_ROW} WHERE attention IS NOT NULL ORDER BY updated_at ASC LIMIT 20"


def _escape_like(text: str) -> str:
    # The search box is text, not a pattern: % and _ match themselves.
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_args(f: SalonFilter) -> tuple[str | None, int | None, str | None, bool, str | None]:
    name = f.name_part
    return (f.status, f.yclients_salon_id, "%" + _escape_like(name) + "%" if name else None,
            f.attention_only, f.link)


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
        salon_pk = SalonPk(row["id"])
        timeline = await events.for_salon(conn, salon_pk, limit=100)
        install = await salons.branches(conn, row["install_lead_id"] or salon_pk)
        recent_users = await users.recent(conn, salon_pk, limit=20)
    return _salon_dict(row) | {"install_generation": row["install_generation"],
                               # Who may open the salon (onboarding/admission.py), and whether YClients
                               # reported the install pending when they were bound (False: not checked).
                               "owner_user_id": row["owner_user_id"], "owner_bound_at": row["owner_bound_at"],
                               "install_confirmed": row["install_confirmed"],
                               "users": recent_users,
                               "install_branches": [
                                   {"yclients_salon_id": b.yclients_salon_id, "name": b.name,
                                    "integration_status": b.integration_status.value} for b in install]
                               if len(install) > 1 else [],
                               "events": timeline}


async def overview(pool: Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        counts = await salons.count_by_status(conn)
        installs = await salons.install_counts(conn)
        funnel = {period: await events.funnel(conn, period) for period in ("today", "week")}
        attention = await conn.fetch(_NEEDING_ATTENTION)
    return {"counts": {s: counts.get(s, 0) for s in STATUSES}, "funnel": funnel, "installs": installs,
            "attention": [_salon_dict(r) for r in attention]}


async def webhook_backlog(pool: Pool, failing_after: int = 3) -> dict[str, Any]:
    """Deliveries not yet done (and those that keep failing), and gateway cleanups pending."""
    async with pool.acquire() as conn:
        pending = await deliveries.count_open(conn)
        failing = await deliveries.failing(conn, failing_after)
        cleanups = await salons.cleanups_pending(conn)
    return {"pending": pending, "failing": failing, "cleanups": cleanups}
