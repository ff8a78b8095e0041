-- Personal data that expires: when a salon uninstalls, the clock starts; the worker erases
-- the owner's name, phone and e-mail and the WhatsApp number after
-- PERSONAL_DATA_RETENTION_DAYS. A trigger keeps the clock, so every path that uninstalls
-- (the webhook worker, a staff fix by hand) starts it, and a reinstall stops it.
ALTER TABLE salons
    ADD COLUMN uninstalled_at           timestamptz,
    ADD COLUMN personal_data_erased_at  timestamptz;

CREATE FUNCTION salons_uninstall_clock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.integration_status = 'uninstalled' AND OLD.integration_status IS DISTINCT FROM 'uninstalled' THEN
        NEW.uninstalled_at := now();
    ELSIF NEW.integration_status <> 'uninstalled' THEN
        NEW.uninstalled_at := NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER salons_uninstall_clock BEFORE UPDATE OF integration_status ON salons
    FOR EACH ROW EXECUTE FUNCTION salons_uninstall_clock();

-- Salons already uninstalled start their clock now.
UPDATE salons SET uninstalled_at = now() WHERE integration_status = 'uninstalled';

CREATE INDEX salons_uninstalled_at ON salons (uninstalled_at) WHERE uninstalled_at IS NOT NULL;
