-- Salons that arrived from the YClients marketplace, the people who brought them, the
-- WhatsApp link of each, and the audit trail of what happened to them.

CREATE TABLE salons (
    id                  bigserial PRIMARY KEY,
    yclients_salon_id   bigint NOT NULL UNIQUE CHECK (yclients_salon_id > 0),
    name                text,
    integration_status  text NOT NULL DEFAULT 'pending_whatsapp' CHECK (integration_status IN
                        ('pending_whatsapp', 'activating', 'active', 'activation_failed',
                         'frozen', 'uninstalled')),
    -- Bumped by each activation: tells a real second uninstall from a retried first one.
    install_generation  integer NOT NULL DEFAULT 0,
    landed_at           timestamptz NOT NULL,            -- the 1-hour window starts here
    first_landed_at     timestamptz NOT NULL DEFAULT now(),
    activated_at        timestamptz,
    api_key_hash        text,                            -- never the key itself
    api_key_prefix      text,
    last_error          text,                            -- a sentence for staff
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX salons_status_idx ON salons (integration_status, updated_at DESC);

CREATE TABLE marketplace_users (
    salon_id            bigint NOT NULL REFERENCES salons (id) ON DELETE CASCADE,
    yclients_user_id    bigint NOT NULL,
    name                text,
    phone               text,
    email               text,
    is_approved         boolean,
    last_landed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (salon_id, yclients_user_id)
);

CREATE TABLE whatsapp_links (
    salon_id            bigint PRIMARY KEY REFERENCES salons (id) ON DELETE CASCADE,
    session_name        text NOT NULL UNIQUE,
    status              text NOT NULL DEFAULT 'idle' CHECK (status IN
                        ('idle', 'starting', 'awaiting_scan', 'linking', 'connected',
                         'expired', 'failed', 'logged_out')),
    qr                  text,
    qr_expires_at       timestamptz,
    phone               text,
    last_error          text,
    -- When the gateway was last asked: polls from many tabs and instances ask at most
    -- once per refresh interval.
    checked_at          timestamptz,
    connected_at        timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE marketplace_events (
    id                  bigserial PRIMARY KEY,
    salon_id            bigint REFERENCES salons (id) ON DELETE CASCADE,
    event_type          text NOT NULL,
    payload             jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX marketplace_events_salon_idx ON marketplace_events (salon_id, created_at DESC);
CREATE INDEX marketplace_events_type_idx ON marketplace_events (event_type, created_at DESC);
