"""The platform's one query of its own (the migration runner keeps its bookkeeping SQL)."""

from __future__ import annotations

from portal.platform.database import Pool


async def ping(pool: Pool) -> None:
    """One round trip through the pool; raises whatever stops it."""
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
