-- IF (NOT) EXISTS throughout: a replay of the migrations after an undo (tests/test_cli.py) finds them done.
-- The passkey step (WhatsApp asking the owner to confirm a new linked device) is a link
-- status of its own; the code WhatsApp may ask them to compare is kept beside it.
ALTER TABLE whatsapp_links
    DROP CONSTRAINT IF EXISTS whatsapp_links_status_check,
    ADD CONSTRAINT whatsapp_links_status_check CHECK (status IN
        ('idle', 'starting', 'awaiting_scan', 'passkey', 'linking', 'connected',
         'expired', 'failed', 'logged_out')),
    ADD COLUMN IF NOT EXISTS passkey_code text;

-- A session in the passkey step is a live client waiting for its owner, like one showing a QR.
DROP INDEX IF EXISTS whatsapp_links_waiting_idx;
CREATE INDEX whatsapp_links_waiting_idx ON whatsapp_links (updated_at)
    WHERE status IN ('starting', 'awaiting_scan', 'passkey', 'linking');

-- Gateway events already taken, by their id (WAHA's `evt_…`, a digest of the body for a
-- gateway that sends none): a replayed or re-delivered event is answered without work.
-- Kept for a day; an event older than that is refused by its timestamp instead.
CREATE TABLE IF NOT EXISTS gateway_events_seen (
    event_id  text PRIMARY KEY,
    seen_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS gateway_events_seen_at_idx ON gateway_events_seen (seen_at);
