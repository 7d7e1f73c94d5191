-- Part 2: which metered usage events were reported to Stripe's meter (metered plans). NULL
-- means not yet; Stripe deduplicates on the identifier we send, so re-sending after a crash
-- between the report and this mark is harmless.
ALTER TABLE usage_events ADD COLUMN meter_reported_at BIGINT;
