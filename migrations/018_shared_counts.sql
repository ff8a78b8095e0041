-- Counts shared by every worker and instance: rate limits and the breaker's totals.

-- Rate-limit counts shared by every worker and instance when there is no Redis: one row per
-- (scope, key) holding the times of the hits still inside the window (at most the limit's
-- amount, like the `limits` library's moving window). UNLOGGED: counts are worth no WAL
-- and no replica; after a crash PostgreSQL empties the table, which only forgets who was
-- close to a limit for at most one window.
CREATE UNLOGGED TABLE IF NOT EXISTS rate_limit_counts (
    scope        text NOT NULL,
    key          text NOT NULL,
    hits         timestamptz[] NOT NULL,
    -- Whether the last hit was let through (so the upsert can say so in one round trip).
    allowed      boolean NOT NULL,
    last_hit_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS rate_limit_counts_last_hit_idx ON rate_limit_counts (last_hit_at);

-- The circuit breaker's totals for the whole deployment: each instance adds what it counted
-- since its last heartbeat (a write per gateway call would be one too many) and reads back
-- everyone's.
ALTER TABLE circuit_breakers ADD COLUMN IF NOT EXISTS total_calls bigint NOT NULL DEFAULT 0;
ALTER TABLE circuit_breakers ADD COLUMN IF NOT EXISTS total_failures bigint NOT NULL DEFAULT 0;
ALTER TABLE circuit_breakers ADD COLUMN IF NOT EXISTS total_rejections bigint NOT NULL DEFAULT 0;
