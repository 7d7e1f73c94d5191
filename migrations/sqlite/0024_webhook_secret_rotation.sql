-- Customer webhook secret rotation (issue 18 item 6): the secret replaced last keeps signing,
-- beside the new one, until `previous_expires_at`, so receivers can switch without a gap.
ALTER TABLE webhook_endpoints ADD COLUMN previous_key_id TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN previous_ciphertext TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN previous_expires_at BIGINT;
