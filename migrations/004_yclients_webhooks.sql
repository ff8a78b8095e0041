-- Deliveries of YClients' webhooks (uninstall, freeze), stored before they are answered and
-- processed from here, so a crash after the answer loses nothing.
CREATE TABLE webhook_deliveries (
    id                 bigserial PRIMARY KEY,
    -- sha256 of event, salon, the salon's install generation and the canonical JSON of the
    -- data: a retry of one delivery has the same key; an uninstall of a later install not.
    idempotency_key    text NOT NULL UNIQUE,
    yclients_salon_id  bigint NOT NULL,
    event              text NOT NULL,
    install_generation integer NOT NULL,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'processing', 'done', 'ignored')),
    attempts           integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    locked_until       timestamptz,
    last_error         text,
    received_at        timestamptz NOT NULL DEFAULT now(),
    processed_at       timestamptz,
    expires_at         timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'processing');
CREATE INDEX webhook_deliveries_expiry_idx ON webhook_deliveries (expires_at);

-- An uninstalled salon's WhatsApp session still to be logged out and deleted at the gateway.
ALTER TABLE salons ADD COLUMN gateway_cleanup_pending_since timestamptz;
