-- Per-tenant runtime credentials (SQLite dialect). A tenant's runtime authenticates its call
-- events with a credential derived from the tenant id and this epoch (see the gateway's
-- runtime_credential module); rotating bumps the epoch, which invalidates the old credential.
-- The gateway writes the credential into the `runtime-credential` Secret of the tenant's
-- namespace with the provider-key projection of 0002, so existing tenants are marked pending:
-- the projection then delivers their credential. Same semantics as the Postgres migration.
ALTER TABLE tenants ADD COLUMN runtime_credential_epoch BIGINT NOT NULL DEFAULT 1;
UPDATE tenants SET provider_keys_generation = provider_keys_generation + 1;
