"""The running portal instances (`portal_instances`): each one's heartbeat and the shared
breaker's version it has applied, so a staff change can tell when every instance follows it.
The breaker's store (breaker_store.py) calls these on its own connection and transaction."""

from __future__ import annotations

from portal.platform.database import Connection


async def register(conn: Connection, instance_id: str, instance_name: str | None) -> None:
    """List this instance as running (again, if it was pruned): its heartbeat is now."""
    await conn.execute(
        "INSERT INTO portal_instances (instance_id, instance_name) VALUES ($1, $2)"
        " ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = now()",
        instance_id, instance_name)


async def prune(conn: Connection) -> None:
    # Instances gone for a day are history, not "running": keep the table small.
    await conn.execute("DELETE FROM portal_instances WHERE heartbeat_at < now() - interval '1 day'")


async def applied(conn: Connection, instance_id: str, version: int) -> None:
    await conn.execute(
        "UPDATE portal_instances SET breaker_version = greatest(breaker_version, $2), heartbeat_at = now()"
        " WHERE instance_id = $1", instance_id, version)


async def seen(conn: Connection, version: int, recent_s: float) -> tuple[int, int]:
    """(instances that applied `version` or later, instances running): running means
    heartbeated within `recent_s`."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE breaker_version >= $1) AS seen, count(*) AS running"
        " FROM portal_instances WHERE heartbeat_at > now() - make_interval(secs => $2)",
        version, recent_s)
    assert row is not None
    return row["seen"], row["running"]


async def leave(conn: Connection, instance_id: str) -> None:
    await conn.execute("DELETE FROM portal_instances WHERE instance_id = $1", instance_id)
