-- Activation intents: written and committed on their own just before the partner call, so
-- an install YClients accepted while our activation transaction was lost (the process died
-- between YClients' 301 and our commit) is still known to be ours. YClients' install-status
-- answer carries no API key, so this record is the only proof of who made the install.
-- Idempotent (IF NOT EXISTS): an operator may re-run migrations from an earlier version.
CREATE TABLE IF NOT EXISTS activation_intents (
    id                  bigserial PRIMARY KEY,
    -- No foreign key on purpose: the intent is written on its own connection while the
    -- activation transaction holds the salon row FOR UPDATE, which a foreign key check
    -- (FOR KEY SHARE) would wait on for ever.
    salon_id            bigint NOT NULL,
    install_generation  integer NOT NULL,
    api_key_hash        text NOT NULL,             -- sha256 of the derived key, never the key
    attempts            integer NOT NULL DEFAULT 1,
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,               -- NULL: unfinished (the outcome is unknown)
    -- active: YClients has it and so do we; failed: YClients refused it for sure;
    -- released: YClients reports no install, closed by the reconciler; foreign: YClients
    -- reports an install we never attempted.
    outcome             text CHECK (outcome IN ('active', 'failed', 'released', 'foreign')),
    last_error          text,
    UNIQUE (salon_id, install_generation)
);
CREATE INDEX IF NOT EXISTS activation_intents_open_idx ON activation_intents (started_at) WHERE finished_at IS NULL;

-- Part of the API key is nothing staff or an API may read: gone from the audit trail, and no
-- longer stored (the column stays one release, for a rollback to code that still writes it).
UPDATE marketplace_events SET payload = payload - 'api_key_prefix' WHERE payload ? 'api_key_prefix';
UPDATE salons SET api_key_prefix = NULL WHERE api_key_prefix IS NOT NULL;
