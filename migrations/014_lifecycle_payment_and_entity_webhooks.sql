-- YClients' lifecycle `payment` carries payment and period data (amounts, dates): kept with
-- the delivery, so the worker that processes it from the row can show it on the timeline.
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS data jsonb;

-- Entity webhooks (appointments, clients…) that reached the lifecycle endpoint: answered
-- "ignored" and only counted, a row per day, for the staff System page. A growing count
-- means an install still sends its entity webhooks to /webhook/yclients.
CREATE TABLE IF NOT EXISTS entity_webhooks_ignored (
    day            date PRIMARY KEY,
    count          bigint NOT NULL DEFAULT 0,
    last_resource  text,
    last_at        timestamptz NOT NULL DEFAULT now()
);
