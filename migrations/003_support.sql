-- What support staff did, and to what: who, what, target, when, result.
CREATE TABLE admin_audit_log (
    id          bigserial PRIMARY KEY,
    actor       text NOT NULL,          -- "staff:<username>" or "api-key"
    action      text NOT NULL,
    target      text,                   -- e.g. "salon:500001", "breaker:qrGeneration"
    result      text NOT NULL,          -- ok | refused | error: <short reason>
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_audit_log_created_idx ON admin_audit_log (created_at DESC);
