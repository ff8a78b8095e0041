-- Who may open a salon. YClients' signed landing names a *user*, never the salon, so the
-- salon's own install decides: the first signed landing of an install records that user as
-- the salon's owner user, and later landings are honoured for that user only. A new install
-- (after an uninstall) binds again.
ALTER TABLE salons ADD COLUMN IF NOT EXISTS owner_user_id bigint;
ALTER TABLE salons ADD COLUMN IF NOT EXISTS owner_bound_at timestamptz;
-- Whether YClients reported the install `pending` when the owner was bound (false: an
-- operator turned LANDING_REQUIRE_PENDING off, and staff should know). NULL: bound before.
ALTER TABLE salons ADD COLUMN IF NOT EXISTS install_confirmed boolean;

-- Salons onboarded before this: the user who first brought them (the earliest landing).
UPDATE salons s SET owner_user_id = u.yclients_user_id, owner_bound_at = u.last_landed_at
FROM (SELECT DISTINCT ON (salon_id) salon_id, yclients_user_id, last_landed_at
      FROM marketplace_users ORDER BY salon_id, last_landed_at ASC) u
WHERE u.salon_id = s.id AND s.owner_user_id IS NULL AND s.integration_status <> 'uninstalled';

CREATE INDEX IF NOT EXISTS salons_owner_user_idx ON salons (owner_user_id) WHERE owner_user_id IS NOT NULL;

-- The replay memory of the signature and the "bound by the signed data" flag answered a
-- question the documented landing cannot answer (it never names the salon): gone.
DROP TABLE IF EXISTS landing_links;
ALTER TABLE salons DROP COLUMN IF EXISTS landing_bound;
