"""Salon rows (`salons`): the record every subsystem reads, SQL by hand.

The table's one store: every statement that names `salons` is here (other packages call
these functions; a read that needs the salon with another table in one round trip reads a
view of migrations/019 that its owner's store reads). The landing, activation, the
lifecycle webhooks and support each have their section below; how they combine the salon
with other rows (and in which transaction) stays with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from portal.platform.database import Connection
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.salons.status import IntegrationStatus


@dataclass(frozen=True)
class Salon:
    pk: SalonPk  # the `id` column: see _COLUMNS
    yclients_salon_id: YclientsSalonId
    name: str | None
    integration_status: IntegrationStatus
    install_generation: int
    landed_at: datetime
    activated_at: datetime | None
    api_key_prefix: str | None
    last_error: str | None
    # The YClients user who started the current install (None: not bound, or an unsigned
    # landing); only they may open the salon (onboarding/admission.py).
    owner_user_id: int | None
    # A chain's branch: the install's first branch, whose WhatsApp link serves them all
    # (None: this salon leads its own install).
    install_lead_id: SalonPk | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Salon:
        values = {f: row[f] for f in cls.__dataclass_fields__}
        values["integration_status"] = IntegrationStatus(values["integration_status"])
        return cls(**values)


# The table keeps its `id` column; the field is `pk` so Python never says a bare "id" for a
# salon. Selecting `id AS pk` lets from_row stay a plain field-by-field copy.
COLUMNS = ", ".join("id AS pk" if f == "pk" else f for f in Salon.__dataclass_fields__)

_BY_YCLIENTS_ID = f"SELECT {COLUMNS} FROM salons WHERE yclients_salon_id = $1"


async def by_pk(conn: Connection, salon_pk: SalonPk) -> Salon | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM salons WHERE id = $1", salon_pk)
    return Salon.from_row(row) if row else None


async def branches(conn: Connection, lead_pk: SalonPk) -> list[Salon]:
    """An install's salons, its lead first, then the other branches by YClients id."""
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM salons WHERE id = $1 OR install_lead_id = $1"
                            " ORDER BY install_lead_id NULLS FIRST, yclients_salon_id", lead_pk)
    return [Salon.from_row(r) for r in rows]


async def by_yclients_id(conn: Connection, yclients_salon_id: YclientsSalonId) -> Salon | None:
    row = await conn.fetchrow(_BY_YCLIENTS_ID, yclients_salon_id)
    return Salon.from_row(row) if row else None


# --- The landing (onboarding/store.py composes these with the marketplace user's row) ---

# The salon as the landing decides on it, and whether its owner user's binding still stands
# (an uninstalled salon's binding belonged to the install that is gone).
_OWNERSHIP = f"""
SELECT {COLUMNS}, integration_status <> 'uninstalled' AND owner_user_id IS NOT NULL AS bound
FROM salons WHERE yclients_salon_id = $1
"""

# Binds a new install to its user. Only a salon that is not bound (new, uninstalled, or
# onboarded by an unsigned landing) takes a new owner user; a bound salon is left alone and
# the statement returns nothing, so two users racing for one salon cannot both win. A new
# install starts its onboarding again (an uninstalled or failed salon goes back to
# pending_whatsapp); an active, activating or frozen salon keeps its status.
_BIND = f"""
INSERT INTO salons (yclients_salon_id, name, landed_at, owner_user_id, owner_bound_at, install_confirmed)
VALUES ($1, $2, now(), $3, now(), $4)
ON CONFLICT (yclients_salon_id) DO UPDATE SET
    name = COALESCE(EXCLUDED.name, salons.name),
    landed_at = now(),
    owner_user_id = EXCLUDED.owner_user_id,
    owner_bound_at = now(),
    install_confirmed = EXCLUDED.install_confirmed,
    install_lead_id = NULL,
    integration_status = CASE
        WHEN salons.integration_status IN ('uninstalled', 'activation_failed')
        THEN 'pending_whatsapp' ELSE salons.integration_status END,
    updated_at = now()
WHERE salons.owner_user_id IS NULL OR salons.integration_status = 'uninstalled'
RETURNING {COLUMNS}, (xmax = 0) AS inserted
"""

# A returning owner user (or an unsigned landing an operator allowed): the salon exists and
# keeps its owner; a failed activation gets its Activate button back.
_RETURN = f"""
UPDATE salons SET landed_at = now(), updated_at = now(),
    integration_status = CASE WHEN integration_status = 'activation_failed'
                              THEN 'pending_whatsapp' ELSE integration_status END
WHERE id = $1
RETURNING {COLUMNS}
"""

_UNSIGNED_UPSERT = f"""
INSERT INTO salons (yclients_salon_id, landed_at) VALUES ($1, now())
ON CONFLICT (yclients_salon_id) DO UPDATE SET
    landed_at = now(), updated_at = now(),
    integration_status = CASE WHEN salons.integration_status IN ('uninstalled', 'activation_failed')
                              THEN 'pending_whatsapp' ELSE salons.integration_status END
RETURNING {COLUMNS}, (xmax = 0) AS inserted
"""


async def ownership(conn: Connection, yclients_salon_id: YclientsSalonId) -> tuple[Salon, bool] | None:
    """The salon and whether its owner user's binding stands; None for a salon never seen."""
    row = await conn.fetchrow(_OWNERSHIP, yclients_salon_id)
    return None if row is None else (Salon.from_row(row), bool(row["bound"]))


async def bind_owner(conn: Connection, yclients_salon_id: YclientsSalonId, name: str | None,
                     owner_user_id: int | None, *, confirmed: bool) -> tuple[Salon, bool] | None:
    """(the salon, whether it is new); None when another user holds it."""
    row = await conn.fetchrow(_BIND, yclients_salon_id, name, owner_user_id, confirmed)
    return None if row is None else (Salon.from_row(row), bool(row["inserted"]))


async def note_return(conn: Connection, salon_pk: SalonPk) -> Salon | None:
    row = await conn.fetchrow(_RETURN, salon_pk)
    return Salon.from_row(row) if row else None


async def upsert_unsigned(conn: Connection, yclients_salon_id: YclientsSalonId) -> tuple[Salon, bool]:
    """(the salon, whether it is new) after an unsigned landing."""
    row = await conn.fetchrow(_UNSIGNED_UPSERT, yclients_salon_id)
    assert row is not None  # an upsert with RETURNING always returns its row
    return Salon.from_row(row), bool(row["inserted"])


async def group_install(conn: Connection, lead_pk: SalonPk, branch_pks: list[SalonPk]) -> None:
    """One install for several branches (a chain's landing): the lead's WhatsApp serves all."""
    async with conn.transaction():
        await conn.execute("UPDATE salons SET install_lead_id = NULL WHERE id = $1 AND install_lead_id IS NOT NULL",
                           lead_pk)
        await conn.execute("UPDATE salons SET install_lead_id = $1, updated_at = now()"
                           " WHERE id = ANY($2::bigint[]) AND install_lead_id IS DISTINCT FROM $1", lead_pk, branch_pks)


async def hand_over(conn: Connection, salon_pk: SalonPk, new_owner_user_id: int) -> int | None:
    """Staff give the salon to another YClients user; the previous owner user, or None."""
    previous: int | None = await conn.fetchval(
        "SELECT owner_user_id FROM salons WHERE id = $1 FOR UPDATE", salon_pk)
    await conn.execute(
        "UPDATE salons SET owner_user_id = $2, owner_bound_at = now(), updated_at = now() WHERE id = $1",
        salon_pk, new_owner_user_id)
    return previous


# --- Activation (activation/activate.py and recovery.py) ---

async def mark_activating(conn: Connection, salon_pk: SalonPk, key_hash: str) -> None:
    # Only the hash: no part of the key is stored where staff or an API could read it.
    await conn.execute(
        "UPDATE salons SET integration_status = 'activating', api_key_hash = $2,"
        " api_key_prefix = NULL, updated_at = now() WHERE id = $1", salon_pk, key_hash)


async def mark_active(conn: Connection, salon_pk: SalonPk, install_generation: int) -> None:
    await conn.execute(
        "UPDATE salons SET integration_status = 'active', activated_at = now(),"
        " install_generation = $2, last_error = NULL, updated_at = now() WHERE id = $1",
        salon_pk, install_generation)


async def forget_key(conn: Connection, salon_pk: SalonPk) -> None:
    """The legacy path's undo of `mark_activating` after a partner failure."""
    await conn.execute("UPDATE salons SET api_key_hash = NULL WHERE id = $1", salon_pk)


async def mark_activation_failed(conn: Connection, salon_pk: SalonPk, error: str) -> None:
    """`activation_failed` with the partner's safe summary; an active salon stays active."""
    await conn.execute(
        "UPDATE salons SET integration_status = 'activation_failed', last_error = $2, updated_at = now()"
        " WHERE id = $1 AND integration_status <> 'active'", salon_pk, error)


async def locked_state(conn: Connection, salon_pk: SalonPk) -> tuple[IntegrationStatus, int] | None:
    """(integration_status, install_generation), the salon row locked until commit."""
    row = await conn.fetchrow(
        "SELECT integration_status, install_generation FROM salons WHERE id = $1 FOR UPDATE", salon_pk)
    return None if row is None else (IntegrationStatus(row["integration_status"]), row["install_generation"])


async def complete_install(conn: Connection, salon_pk: SalonPk, generation: int, key_hash: str) -> None:
    """YClients holds this install: the salon is active with its generation and key."""
    await conn.execute(
        "UPDATE salons SET integration_status = 'active', activated_at = now(), install_generation = $2,"
        " api_key_hash = $3, last_error = NULL, updated_at = now() WHERE id = $1",
        salon_pk, generation, key_hash)


async def release_activating(conn: Connection, salon_pk: SalonPk) -> None:
    """YClients has no install: a salon left `activating` goes back to the Activate button."""
    await conn.execute(
        "UPDATE salons SET integration_status = 'pending_whatsapp', api_key_hash = NULL, updated_at = now()"
        " WHERE id = $1 AND integration_status = 'activating'", salon_pk)


async def mark_for_retry(conn: Connection, salon_pk: SalonPk) -> bool:
    """Staff: back to the owner's Activate button, only from a failed activation; the landing
    window starts again so the owner has the marketplace's hour to press it. True if it changed."""
    changed = await conn.fetchval(
        "UPDATE salons SET integration_status = 'pending_whatsapp', last_error = NULL, landed_at = now(),"
        " updated_at = now() WHERE id = $1 AND integration_status = 'activation_failed' RETURNING id", salon_pk)
    return changed is not None


# --- YClients' lifecycle webhooks (yclients_webhooks/) ---

async def install_generation(conn: Connection, yclients_salon_id: YclientsSalonId) -> int:
    """The salon's current install generation; 0 for a salon we never saw."""
    generation = await conn.fetchval(
        "SELECT install_generation FROM salons WHERE yclients_salon_id = $1", yclients_salon_id)
    return int(generation or 0)


# A chain's branches share their lead's WhatsApp session: it is cleaned up only once the lead
# and every branch of the install are uninstalled (a branch has no session of its own).
_LIVE_BRANCHES = ("EXISTS (SELECT 1 FROM salons b"
                  " WHERE b.install_lead_id = {lead} AND b.integration_status <> 'uninstalled')")


async def mark_uninstalled(conn: Connection, yclients_salon_id: YclientsSalonId) -> SalonPk | None:
    """Uninstalled: the key is forgotten and the gateway session queued for cleanup."""
    row = await conn.fetchrow(
        f"""UPDATE salons s SET integration_status = 'uninstalled', api_key_hash = NULL, api_key_prefix = NULL,
                   gateway_cleanup_pending_since = CASE WHEN s.install_lead_id IS NOT NULL
                       OR {_LIVE_BRANCHES.format(lead="s.id")} THEN NULL ELSE now() END,
                   updated_at = now()
               WHERE yclients_salon_id = $1 RETURNING id, install_lead_id""", yclients_salon_id)
    if row is None:
        return None
    if row["install_lead_id"] is not None:  # the last branch gone: the lead's session may go too
        await conn.execute(
            f"""UPDATE salons SET gateway_cleanup_pending_since = now()
                WHERE id = $1 AND integration_status = 'uninstalled' AND gateway_cleanup_pending_since IS NULL
                  AND NOT {_LIVE_BRANCHES.format(lead="$1")}""", row["install_lead_id"])
    return SalonPk(row["id"])


async def mark_frozen(conn: Connection, yclients_salon_id: YclientsSalonId) -> SalonPk | None:
    # Frozen keeps the WhatsApp link and the key: a later activation brings it back.
    salon_pk: SalonPk | None = await conn.fetchval(
        "UPDATE salons SET integration_status = 'frozen', updated_at = now()"
        " WHERE yclients_salon_id = $1 RETURNING id", yclients_salon_id)
    return salon_pk


async def mark_paid(conn: Connection, yclients_salon_id: YclientsSalonId) -> tuple[SalonPk, bool] | None:
    """A successful payment: a frozen salon is active again (the platform's `freezed → active`);
    any other stays as it is. (salon, whether it was unfrozen); None for a salon we never saw."""
    row = await conn.fetchrow(
        """UPDATE salons s SET integration_status = CASE WHEN s.integration_status = 'frozen' THEN 'active'
                                                         ELSE s.integration_status END, updated_at = now()
           FROM (SELECT id, integration_status AS before FROM salons WHERE yclients_salon_id = $1 FOR UPDATE) b
           WHERE s.id = b.id RETURNING s.id, b.before = 'frozen' AS unfrozen""", yclients_salon_id)
    return None if row is None else (SalonPk(row["id"]), bool(row["unfrozen"]))


async def still_uninstalled(conn: Connection, yclients_salon_id: YclientsSalonId) -> bool:
    uninstalled = await conn.fetchval(
        "SELECT integration_status = 'uninstalled' FROM salons WHERE yclients_salon_id = $1", yclients_salon_id)
    return bool(uninstalled)


async def finish_cleanup(conn: Connection, yclients_salon_id: YclientsSalonId) -> SalonPk | None:
    """The gateway session is gone: the uninstalled salon's cleanup is done (None: it is not
    uninstalled, or not ours)."""
    salon_pk: SalonPk | None = await conn.fetchval(
        "UPDATE salons SET gateway_cleanup_pending_since = NULL WHERE yclients_salon_id = $1"
        " AND integration_status = 'uninstalled' RETURNING id", yclients_salon_id)
    return salon_pk


async def cleanups_due(conn: Connection, limit: int = 20) -> list[YclientsSalonId]:
    """Uninstalled salons whose gateway session is still to be cleaned up, oldest first."""
    rows = await conn.fetch(
        "SELECT yclients_salon_id FROM salons WHERE gateway_cleanup_pending_since IS NOT NULL"
        " AND integration_status = 'uninstalled' ORDER BY gateway_cleanup_pending_since LIMIT $1", limit)
    return [YclientsSalonId(r["yclients_salon_id"]) for r in rows]


# --- Support (support/store.py and the dashboard) ---

async def cleanups_pending(conn: Connection, limit: int = 50) -> list[dict[str, object]]:
    """Every salon with a gateway cleanup pending, for staff (whatever its status now)."""
    rows = await conn.fetch(
        "SELECT yclients_salon_id, name, gateway_cleanup_pending_since FROM salons"
        " WHERE gateway_cleanup_pending_since IS NOT NULL ORDER BY gateway_cleanup_pending_since LIMIT $1", limit)
    return [dict(r) for r in rows]


async def count_by_status(conn: Connection) -> dict[str, int]:
    return {r["integration_status"]: r["n"] for r in await conn.fetch(
        "SELECT integration_status, count(*) AS n FROM salons GROUP BY 1")}


async def install_counts(conn: Connection) -> dict[str, int]:
    """Installs and branches, all and active: a chain's install is one install of several
    branches (salons)."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE install_lead_id IS NULL) AS installs, count(*) AS branches,"
        " count(*) FILTER (WHERE install_lead_id IS NULL AND integration_status = 'active') AS active_installs,"
        " count(*) FILTER (WHERE integration_status = 'active') AS active_branches"
        " FROM salons WHERE integration_status <> 'uninstalled'")
    return dict(row or {})


# --- Personal data (support/personal_data.py) ---

async def note_personal_data_erased(conn: Connection, salon_pk: SalonPk) -> None:
    await conn.execute("UPDATE salons SET personal_data_erased_at = now() WHERE id = $1", salon_pk)


async def due_for_erasure(conn: Connection, retention_days: float, limit: int) -> list[SalonPk]:
    """Uninstalled longer than the retention, and not erased since the uninstall (locked)."""
    rows = await conn.fetch(
        """
        SELECT id FROM salons
        WHERE uninstalled_at IS NOT NULL
          AND uninstalled_at <= now() - make_interval(secs => $1 * 86400)
          AND (personal_data_erased_at IS NULL OR personal_data_erased_at < uninstalled_at)
        ORDER BY uninstalled_at LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,
        retention_days, limit,
    )
    return [SalonPk(r["id"]) for r in rows]
