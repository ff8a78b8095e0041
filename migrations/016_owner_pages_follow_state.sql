-- What an owner's open page shows depends on the salon's integration status too (an
-- uninstall ends the onboarding, an activation moves it to the salon's own page), so a
-- change of that status moves the salon's link version like any change of the link: the
-- version trigger leaves an explicit bump alone, and the announce trigger tells every
-- instance, whose cached poll answers are then read again.
CREATE OR REPLACE FUNCTION salons_announce_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE whatsapp_links SET version = version + 1 WHERE salon_id = NEW.id;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS salons_status_announce ON salons;
CREATE TRIGGER salons_status_announce AFTER UPDATE OF integration_status ON salons
    FOR EACH ROW WHEN (OLD.integration_status IS DISTINCT FROM NEW.integration_status)
    EXECUTE FUNCTION salons_announce_status();

-- Consecutive failed starts of a link, so a reloaded "could not start" screen keeps its
-- place in the retry backoff (and its reason) instead of starting over at the first pause.
ALTER TABLE whatsapp_links ADD COLUMN IF NOT EXISTS failed_starts integer NOT NULL DEFAULT 0;
