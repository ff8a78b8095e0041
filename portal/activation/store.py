"""The SQL of an activation: the salon's readiness (the view `activation_checks`), its lock,
and the transaction's settings; the install's writes to the salon are `salons/store.py`'s.

The transactional path calls these on one connection inside one transaction; the legacy
path (USE_TRANSACTION_ACTIVATION=false) calls the same functions one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.platform.database import Connection
from portal.platform.locks import activation_lock
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.salons.status import IntegrationStatus
from portal.whatsapp.link import LinkStatus

# The salon and its WhatsApp link as activation checks them (a chain's branch: its lead's link,
# which serves the whole install). How long the install waits for
# us is YClients' to say (its install status), not a clock of ours.
# The view `activation_checks` (migrations/019) is this module's.
_SALON_CHECK = """
SELECT id, yclients_salon_id, integration_status, install_generation, link_status
FROM activation_checks WHERE yclients_salon_id = $1
"""
# The transactional path holds the salon row until commit, so a webhook or a staff action
# waits (the view reads the link in a subquery: only the salon row is locked).
_SALON_CHECK_FOR_UPDATE = _SALON_CHECK + " FOR UPDATE"


@dataclass(frozen=True)
class ActivationCheck:
    salon_pk: SalonPk
    yclients_salon_id: YclientsSalonId
    integration_status: IntegrationStatus
    install_generation: int
    link_status: LinkStatus | None


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
        integration_status=IntegrationStatus(row["integration_status"]),
        install_generation=row["install_generation"],
        link_status=LinkStatus(row["link_status"]) if row["link_status"] is not None else None)
