-- A chain installs the app for several branches at once (the landing's repeated salon_ids[]):
-- one install, one WhatsApp number. Each branch other than the first points at the first,
-- the *lead*, whose WhatsApp link serves the whole install; a lead (or a single salon) has
-- NULL here. Activation still finishes every branch at YClients on its own.
ALTER TABLE salons ADD COLUMN IF NOT EXISTS install_lead_id bigint REFERENCES salons (id) ON DELETE SET NULL;
CREATE INDEX IF NOT EXISTS salons_install_lead_idx ON salons (install_lead_id) WHERE install_lead_id IS NOT NULL;
