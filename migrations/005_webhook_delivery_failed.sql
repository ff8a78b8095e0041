-- A delivery that keeps failing is given up on after a bounded number of attempts: `failed`
-- is never claimed again and is counted on the support dashboard.
ALTER TABLE webhook_deliveries
    DROP CONSTRAINT webhook_deliveries_status_check,
    ADD CONSTRAINT webhook_deliveries_status_check
        CHECK (status IN ('pending', 'processing', 'done', 'ignored', 'failed'));
