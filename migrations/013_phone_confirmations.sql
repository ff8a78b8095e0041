-- Changing a working WhatsApp link needs the working phone: before an owner relinks or
-- disconnects a connected salon, the portal sends a short code through the salon's own
-- session to its own number. One pending code per salon (a new one replaces it); only a
-- keyed hash of the code is kept, with its expiry, its wrong tries and when it was sent
-- (the resend pause). A used code is deleted.
-- IF NOT EXISTS: a replay of the migrations after an undo (tests/test_cli.py) finds it there.
CREATE TABLE IF NOT EXISTS phone_confirmations (
    salon_id    bigint PRIMARY KEY REFERENCES salons (id) ON DELETE CASCADE,
    code_hash   bytea NOT NULL,
    sent_to     text NOT NULL,  -- the masked number ('+7 ••• •••-••-67'), to tell the owner
    attempts    integer NOT NULL DEFAULT 0,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
