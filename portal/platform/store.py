"""The platform's own queries: the health ping and notifications (the migration runner keeps
its bookkeeping SQL)."""

from __future__ import annotations

from portal.platform.database import Connection, Pool

__all__ = ["Connection", "notify", "ping", "ping_connection"]


async def ping(pool: Pool) -> None:
    """One round trip through the pool; raises whatever stops it."""
    async with pool.acquire() as conn:
        await ping_connection(conn)


async def ping_connection(conn: Connection) -> None:
    await conn.fetchval("SELECT 1")


async def notify(conn: Connection, channel: str, payload: str) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", channel, payload)
