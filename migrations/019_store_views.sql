-- One store per table (README, "Architecture"): a table's SQL lives in its owner's store
-- module only. A read that needs several tables in one round trip reads a view defined
-- here instead, and the view has one owner too (tests/test_architecture.py, TABLE_OWNERS).
-- PostgreSQL inlines a view into the query that reads it, so a query on a view plans as the
-- join it replaced: unread columns (and their subqueries) cost nothing.

-- A salon with its own WhatsApp link (NULL link columns: none yet). Owner: whatsapp/store.py
-- (the owner's poll, the safety sweep's list, a save's integration status).
CREATE OR REPLACE VIEW salon_links AS
SELECT s.id AS salon_pk, s.yclients_salon_id, s.integration_status, s.owner_user_id,
       l.salon_id, l.session_name, l.status, l.qr, l.qr_expires_at, l.phone, l.last_error, l.checked_at,
       l.pairing_code, l.pairing_expires_at, l.version, l.connected_at, l.connected_phone, l.passkey_code,
       l.failed_starts, l.updated_at
FROM salons s LEFT JOIN whatsapp_links l ON l.salon_id = s.id;

-- The salon as activation checks it: a chain's branch reads its lead's link, which serves the
-- whole install. The link status is a scalar subquery, not a join, so `FOR UPDATE` on this
-- view locks the salon row alone, as `FOR UPDATE OF s` did. Owner: activation/store.py.
CREATE OR REPLACE VIEW activation_checks AS
SELECT s.id, s.yclients_salon_id, s.integration_status, s.install_generation,
       (SELECT l.status FROM whatsapp_links l WHERE l.salon_id = COALESCE(s.install_lead_id, s.id)) AS link_status
FROM salons s;

-- An activation intent with the salon it is for. Owner: activation/intent_store.py.
CREATE OR REPLACE VIEW activation_intent_salons AS
SELECT i.salon_id, i.install_generation, i.api_key_hash, i.attempts, i.started_at, i.finished_at, i.outcome,
       i.last_error, s.yclients_salon_id, s.name, s.integration_status
FROM activation_intents i JOIN salons s ON s.id = i.salon_id;

-- An event of the trail with the salon it is about (none for a salon-less event). Owner:
-- salons/event_store.py (the dashboard's landing alerts).
CREATE OR REPLACE VIEW salon_events AS
SELECT e.id, e.salon_id, e.event_type, e.payload, e.created_at, s.yclients_salon_id, s.name, s.owner_user_id
FROM marketplace_events e LEFT JOIN salons s ON s.id = e.salon_id;

-- A salon as support staff see it: its link, its last event, its install, and why it needs a
-- human (`attention`, a code; NULL: it does not). The order of the CASE is the urgency; a
-- salon stuck in a waiting link step says which step in `link_status`. Ten minutes is the
-- "stuck" threshold. Owner: support/store.py.
CREATE OR REPLACE VIEW salon_overview AS
SELECT s.id, s.yclients_salon_id, s.name, s.integration_status, s.landed_at, s.activated_at, s.last_error,
       s.api_key_hash IS NOT NULL AS api_key_set, s.install_generation, s.owner_user_id, s.install_lead_id,
       s.install_confirmed, s.owner_bound_at, s.updated_at,
       (SELECT x.yclients_salon_id FROM salons x WHERE x.id = s.install_lead_id) AS lead_yclients_salon_id,
       (SELECT count(*) FROM salons b WHERE b.install_lead_id = s.id) AS branch_count,
       COALESCE(l.status, 'idle') AS link_status, l.phone, l.last_error AS link_error, l.updated_at AS link_updated_at,
       -- Subqueries, not a LATERAL join: a count reads none of them, and a page evaluates
       -- them for its own rows only (after the sort and the limit).
       (SELECT event_type FROM marketplace_events WHERE salon_id = s.id
        ORDER BY created_at DESC, id DESC LIMIT 1) AS last_event,
       (SELECT created_at FROM marketplace_events WHERE salon_id = s.id
        ORDER BY created_at DESC, id DESC LIMIT 1) AS last_event_at,
       CASE
         WHEN s.integration_status = 'activation_failed' THEN 'activation_failed'
         WHEN l.status = 'logged_out' THEN 'logged_out'
         WHEN l.status = 'expired' THEN 'qr_expired'
         WHEN l.status = 'failed' THEN 'session_failed'
         WHEN s.integration_status = 'activating' AND s.updated_at < now() - interval '10 minutes'
           THEN 'stuck_activating'
         WHEN s.integration_status = 'pending_whatsapp' AND l.status IN ('starting', 'awaiting_scan', 'passkey', 'linking')
              AND l.updated_at < now() - interval '10 minutes' THEN 'stuck'
       END AS attention
FROM salons s
LEFT JOIN whatsapp_links l ON l.salon_id = s.id;
