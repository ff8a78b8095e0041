"""The staff audit log: every admin action, who did it, to what, and how it went."""

from __future__ import annotations

import json


async def record(pool, actor: str, action: str, target: str | None, result: str, detail: dict | None = None) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO admin_audit_log (actor, action, target, result, detail) VALUES ($1, $2, $3, $4, $5::jsonb)",
            actor, action, target, result[:200], json.dumps(detail or {}, ensure_ascii=False, default=str))


async def recent(pool, limit: int = 100, offset: int = 0) -> list[dict]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, actor, action, target, result, detail, created_at FROM admin_audit_log"
            " ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2", limit, offset)
    return [dict(r) | {"detail": json.loads(r["detail"])} for r in rows]
