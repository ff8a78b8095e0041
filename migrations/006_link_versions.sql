-- Every instance learns of a link change at once: a version that moves exactly when what
-- an owner sees moves, announced on one channel. Done by triggers, so every writer (polls,
-- gateway events, staff actions, the webhook worker, a hand-run UPDATE) announces alike.
ALTER TABLE whatsapp_links ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION whatsapp_links_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- checked_at alone (a refresh claim) is bookkeeping, not a change anyone sees.
    IF (NEW.status, NEW.qr, NEW.phone, NEW.last_error, NEW.pairing_code, NEW.pairing_expires_at)
       IS DISTINCT FROM
       (OLD.status, OLD.qr, OLD.phone, OLD.last_error, OLD.pairing_code, OLD.pairing_expires_at) THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER whatsapp_links_version BEFORE UPDATE ON whatsapp_links
    FOR EACH ROW EXECUTE FUNCTION whatsapp_links_bump_version();

-- Payload `link:<salon pk>:<version>`: compact, and nothing personal in it.
CREATE FUNCTION whatsapp_links_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.version <> OLD.version THEN
        PERFORM pg_notify('portal_events', 'link:' || NEW.salon_id || ':' || NEW.version);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER whatsapp_links_announce AFTER INSERT OR UPDATE ON whatsapp_links
    FOR EACH ROW EXECUTE FUNCTION whatsapp_links_announce();
