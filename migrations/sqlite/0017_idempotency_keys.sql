-- Idempotency-Key (issue 18): the first answer to a creating POST, per tenant, caller and key,
-- kept for 24 hours so that a retried request gets the same answer without a second effect.
-- `status` is NULL while the first request runs (`locked_until` bounds how long a crashed
-- request holds the key); the answer's body is sealed under the master key (it may hold a
-- secret shown once, such as a new API key).
CREATE TABLE idempotency_keys (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    principal    TEXT NOT NULL,
    key_hash     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    path         TEXT NOT NULL,
    status       INTEGER,
    content_type TEXT,
    key_id       TEXT,
    ciphertext   TEXT,
    locked_until BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, principal, key_hash)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys(expires_at);
