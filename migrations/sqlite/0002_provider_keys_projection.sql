-- Provider-key projection state (SQLite dialect). In Kubernetes mode the gateway writes a
-- tenant's provider credentials into the Secret `provider-keys` in the tenant's namespace.
-- That write can fail (right after signup the operator has not created the namespace yet),
-- so the database remembers whether the Secret is behind:
--   provider_keys_generation  bumped in the same transaction as every credential change;
--   provider_keys_projected   the generation the last successful Secret write carried.
-- projected < generation means pending: the gateway retries in the background (with backoff)
-- and on the next credential change. Existing tenants start in sync (0 = 0).
-- Same columns and semantics as the Postgres migration (which relies on the row-level-security
-- policies that `tenants` already has; SQLite has none).
ALTER TABLE tenants ADD COLUMN provider_keys_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN provider_keys_projected BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tenants_provider_keys_pending ON tenants(id)
    WHERE provider_keys_projected < provider_keys_generation;
