"""The SQL of an activation: the salon's readiness, its lock, and the writes of an install.

The transactional path calls these on one connection inside one transaction; the legacy
path (USE_TRANSACTION_ACTIVATION=false) calls the same functions one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.platform.database import Connection
from portal.platform.locks import activation_lock
from portal.salons.ids import SalonPk, YclientsSalonId

# The salon and its WhatsApp link as activation checks them (a chain's branch: its lead's link,
# which serves the whole install). How long the install waits for
# us is YClients' to say (its install status), not a clock of ours.
_SALON_CHECK = """
SELECT s.id, s.yclients_salon_id, s.integration_status, s.install_generation, l.status AS link_status
FROM salons s LEFT JOIN whatsapp_links l ON l.salon_id = COALESCE(s.install_lead_id, s.id)
WHERE s.yclients_salon_id = $1
"""
# The transactional path holds the row until commit, so a webhook or a staff action waits.
_SALON_CHECK_FOR_UPDATE = _SALON_CHECK + " FOR UPDATE OF s"


@dataclass(frozen=True)
class ActivationCheck:
    salon_pk: SalonPk
    yclients_salon_id: YclientsSalonId
    integration_status: str
    install_generation: int
    link_status: str | None


async def limit_idle_in_transaction(conn: Connection, idle_ms: int) -> None:
    """`SET LOCAL idle_in_transaction_session_timeout`, as a bound parameter.

    SET takes no parameters; `set_config(name, value, is_local => true)` is its bindable
    form and lasts until the end of the current transaction, as SET LOCAL does.
    """
    await conn.execute("SELECT set_config('idle_in_transaction_session_timeout', $1, true)", str(idle_ms))


async def commit_without_waiting_for_flush(conn: Connection) -> None:
    """`SET LOCAL synchronous_commit = off`: this transaction's COMMIT returns before its WAL
    is on disk (PostgreSQL flushes it within wal_writer_delay). A crash in between loses the
    transaction, never corrupts: only for writes whose loss something else repairs."""
    await conn.execute("SET LOCAL synchronous_commit = off")


async def try_lock(conn: Connection, yclients_salon_id: YclientsSalonId) -> bool:
    """The per-salon activation lock for this transaction; False when another holds it."""
    acquired: bool = await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)",
                                         *activation_lock(yclients_salon_id))
    return acquired


async def try_session_lock(conn: Connection, yclients_salon_id: YclientsSalonId) -> bool:
    """The same per-salon lock, held across the intent's transaction and the activation's
    (released by `session_unlock`, or with the session; the pool's reset also drops it)."""
    acquired: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *activation_lock(yclients_salon_id))
    return acquired


async def session_unlock(conn: Connection, yclients_salon_id: YclientsSalonId) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1, $2)", *activation_lock(yclients_salon_id))


async def check_salon(conn: Connection, yclients_salon_id: YclientsSalonId, *,
                      for_update: bool) -> ActivationCheck | None:
    row = await conn.fetchrow(_SALON_CHECK_FOR_UPDATE if for_update else _SALON_CHECK, yclients_salon_id)
    if row is None:
        return None
    return ActivationCheck(
        salon_pk=SalonPk(row["id"]), yclients_salon_id=YclientsSalonId(row["yclients_salon_id"]),
        integration_status=row["integration_status"], install_generation=row["install_generation"],
        link_status=row["link_status"])


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


async def mark_failed(conn: Connection, salon_pk: SalonPk, error: str) -> None:
    """`activation_failed` with the partner's safe summary; an active salon stays active."""
    await conn.execute(
        "UPDATE salons SET integration_status = 'activation_failed', last_error = $2, updated_at = now()"
        " WHERE id = $1 AND integration_status <> 'active'", salon_pk, error)
