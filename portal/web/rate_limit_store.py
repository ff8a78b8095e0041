"""SQL of the rate-limit counts kept in PostgreSQL (the shared store when there is no Redis).

One row per (scope, key) holds the times of the hits still inside the window, never more than
the limit's amount: a moving window, as the `limits` library keeps it in Redis. A hit is one
upsert under the row's lock, so two workers counting the same key at the same moment are
serialised and the limit is exact across every worker and instance. Times are the database's
clock, the one clock all instances share.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.platform.database import Pool

# The live hits of the row being updated: those younger than the window ($3 seconds).
_LIVE = "(SELECT h FROM unnest(c.hits) h WHERE h > now() - make_interval(secs => $3))"

_HIT = f"""
INSERT INTO rate_limit_counts AS c (scope, key, hits, allowed, last_hit_at)
VALUES ($1, $2, ARRAY[now()], true, now())
ON CONFLICT (scope, key) DO UPDATE SET
    allowed = (SELECT count(*) FROM {_LIVE} live) < $4,
    hits = ARRAY(SELECT h FROM {_LIVE} live ORDER BY h)
           || CASE WHEN (SELECT count(*) FROM {_LIVE} live) < $4 THEN ARRAY[now()] ELSE '{{}}' END,
    last_hit_at = now()
RETURNING allowed, cardinality(hits) AS used,
          extract(epoch FROM (SELECT min(h) FROM unnest(hits) h) + make_interval(secs => $3) - now())::float8
              AS frees_in_s
"""

_PEEK = """
SELECT count(*) AS used,
       extract(epoch FROM min(h) + make_interval(secs => $3) - now())::float8 AS frees_in_s
FROM rate_limit_counts c, unnest(c.hits) h
WHERE c.scope = $1 AND c.key = $2 AND h > now() - make_interval(secs => $3)
"""


@dataclass(frozen=True)
class WindowCount:
    """What the window holds after a hit (or a look): hits used in it, whether this one was let
    through, and seconds until its oldest hit leaves it (0 when the window is empty)."""

    allowed: bool
    used: int
    frees_in_s: float


class RateLimitStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def hit(self, scope: str, key: str, *, amount: int, window_s: int) -> WindowCount:
        """Count one hit unless the window already holds `amount`."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(_HIT, scope, key, float(window_s), amount)
        assert row is not None
        return WindowCount(row["allowed"], row["used"], row["frees_in_s"] or 0.0)

    async def peek(self, scope: str, key: str, *, amount: int, window_s: int) -> WindowCount:
        """Would one more hit be let through? Counts nothing."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(_PEEK, scope, key, float(window_s))
        assert row is not None
        return WindowCount(row["used"] < amount, row["used"], row["frees_in_s"] or 0.0)

    async def forget_idle(self, older_than_s: float) -> int:
        """Delete rows with no hit for `older_than_s` (the longest window): nothing they hold counts."""
        async with self._pool.acquire() as conn:
            status: str = await conn.execute(
                "DELETE FROM rate_limit_counts WHERE last_hit_at < now() - make_interval(secs => $1)",
                older_than_s)
        return int(status.split()[-1])
