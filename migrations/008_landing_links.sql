-- Landing links remembered by the hash of their signature (never the signature itself):
-- YClients' user_data_sign carries no timestamp or nonce, so what we remember is the only
-- thing that tells a replay from a fresh link. A link works for the registration window
-- from its first use, for the salon it was first used for only.
CREATE TABLE landing_links (
    sign_hash      bytea PRIMARY KEY,                 -- sha256 of the lowercase hex signature
    salon_id       bigint NOT NULL REFERENCES salons (id) ON DELETE CASCADE,
    first_used_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX landing_links_salon_idx ON landing_links (salon_id);

-- Whether the salon's latest landing was bound to it by the signed data (user_data named
-- the salon). NULL: landed before this was recorded. false: only the query named the salon.
ALTER TABLE salons ADD COLUMN landing_bound boolean;

-- Counting the sessions waiting for a scan (MAX_WAITING_SESSIONS) reads only those.
CREATE INDEX whatsapp_links_waiting_idx ON whatsapp_links (updated_at)
    WHERE status IN ('starting', 'awaiting_scan', 'linking');
