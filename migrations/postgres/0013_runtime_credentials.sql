-- Per-tenant runtime credentials (Postgres dialect). A tenant's runtime authenticates its call
-- events with a credential derived from the tenant id and this epoch (see the gateway's
-- runtime_credential module); rotating bumps the epoch, which invalidates the old credential.
-- The gateway writes the credential into the `runtime-credential` Secret of the tenant's
-- namespace with the provider-key projection of 0002, so existing tenants are marked pending:
-- the projection then delivers their credential. The owner lifts FORCE for that one UPDATE
-- (the policies of 0001 match no row without `app.tenant_id`), inside this migration's
-- transaction.
ALTER TABLE tenants ADD COLUMN runtime_credential_epoch BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tenants NO FORCE ROW LEVEL SECURITY;
UPDATE tenants SET provider_keys_generation = provider_keys_generation + 1;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
