-- One circuit breaker for the whole deployment: its state is a row every instance reads and
-- changes atomically (SELECT ... FOR UPDATE), instead of one breaker per process.
CREATE TABLE circuit_breakers (
    name                 text PRIMARY KEY,
    -- Bumped on every write and announced as `breaker:<name>:<version>` on portal_events, so
    -- each instance knows whether its in-memory copy is current.
    version              bigint NOT NULL DEFAULT 1,
    state                text NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
    forced               boolean NOT NULL DEFAULT false,
    episode              bigint NOT NULL DEFAULT 0,
    opened_at            timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    half_open_successes  integer NOT NULL DEFAULT 0,
    -- Half-open trial calls in flight: {"<claim id>": <expires at, epoch seconds>}. A claim
    -- whose holder died is ignored once it expires, so half-open is never stranded.
    trials               jsonb NOT NULL DEFAULT '{}',
    last_error           text,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- The running instances (each makes up its id at start) and the last breaker version each has
-- applied: what the System page's "seen by k of n instances" counts. A row not heartbeated
-- recently is an instance that is gone.
CREATE TABLE portal_instances (
    instance_id      text PRIMARY KEY,
    instance_name    text,
    breaker_version  bigint NOT NULL DEFAULT 0,
    started_at       timestamptz NOT NULL DEFAULT now(),
    heartbeat_at     timestamptz NOT NULL DEFAULT now()
);
