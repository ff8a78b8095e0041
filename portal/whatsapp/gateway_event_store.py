"""Gateway events already taken (`gateway_events_seen`): a replayed webhook event is noticed
by its id, within a memory window the webhook also enforces by the event's timestamp."""

from __future__ import annotations

from portal.platform.database import Connection

# How long an event id is remembered; the webhook refuses events older than this by their
# timestamp, so a replay cannot outlive its id.
EVENT_MEMORY_S = 86_400.0


async def seen(conn: Connection, event_id: str) -> bool:
    """Whether a gateway event with this id was already taken."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM gateway_events_seen WHERE event_id = $1)",
                                    event_id))


async def remember(conn: Connection, event_id: str) -> None:
    """Note an event as taken, and forget those past the memory window in the same statement."""
    await conn.execute(
        """WITH purge AS (DELETE FROM gateway_events_seen WHERE seen_at < now() - make_interval(secs => $2))
           INSERT INTO gateway_events_seen (event_id) VALUES ($1) ON CONFLICT (event_id) DO NOTHING""",
        event_id, EVENT_MEMORY_S)
