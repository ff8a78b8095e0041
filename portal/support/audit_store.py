"""The staff audit log: every admin action, who did it, to what, and how it went.

`record` writes on the caller's connection, so an action's audit entry commits or rolls
back with the action's own writes; `record_alone` borrows a connection for an entry that
stands by itself (a sign-in, a breaker change, a refusal).
"""

from __future__ import annotations

import json
from typing import Any

from portal.platform.database import Connection, Pool


async def record(conn: Connection, actor: str, action: str, target: str | None, result: str,
                 detail: dict[str, Any] | None = None) -> None:
    await conn.execute(
        "INSERT INTO admin_audit_log (actor, action, target, result, detail) VALUES ($1, $2, $3, $4, $5::jsonb)",
        actor, action, target, result[:200], json.dumps(detail or {}, ensure_ascii=False, default=str))


async def record_alone(pool: Pool, actor: str, action: str, target: str | None, result: str,
                       detail: dict[str, Any] | None = None) -> None:
    async with pool.acquire() as conn:
        await record(conn, actor, action, target, result, detail)


async def recent(pool: Pool, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, actor, action, target, result, detail, created_at FROM admin_audit_log"
            " ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2", limit, offset)
    return [dict(r) | {"detail": json.loads(r["detail"])} for r in rows]
