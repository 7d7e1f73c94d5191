-- Issue 14: tenants made by kubectl/GitOps, and when the gateway creates a Tenant (Postgres dialect).
--
-- origin        'signup' (the gateway created the tenant and its Tenant CR) or 'manifest' (the
--               gateway adopted a Tenant CR someone else applied; `cr_uid` is that CR's uid).
-- activated_at  when the tenant's Tenant CR may exist: a signup tenant is activated when its
--               first owner verifies the e-mail address (no namespace or runtime pod before),
--               a manifest tenant when adopted. Existing tenants had their CR since signup.
-- detached_at   the Tenant CR was deleted: the tenant is kept (call records, usage, audit)
--               but suspended, and the gateway never re-creates the CR.
-- limits        the CR's `spec.limits` as the gateway mirrors it (a LimitPatch JSON).
-- carrier       the CR's `spec.carrier` (a CarrierSpec JSON): for a signup tenant the platform's
--               default carrier, or the tenant's own account once it stores one.
ALTER TABLE tenants ADD COLUMN origin TEXT NOT NULL DEFAULT 'signup';
ALTER TABLE tenants ADD COLUMN cr_uid TEXT;
ALTER TABLE tenants ADD COLUMN activated_at BIGINT;
ALTER TABLE tenants ADD COLUMN detached_at BIGINT;
ALTER TABLE tenants ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
ALTER TABLE tenants ADD COLUMN carrier TEXT NOT NULL DEFAULT '{}';
UPDATE tenants SET activated_at = created_at;

-- The people a manifest names in `spec.owners`. A membership whose address is listed here was
-- granted by the manifest and goes when the address leaves the list. `invited_at`: when the
-- invitation e-mail went out (once per address and tenant).
CREATE TABLE manifest_owners (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    invited_at BIGINT,
    PRIMARY KEY (tenant_id, email)
);
CREATE INDEX manifest_owners_email ON manifest_owners(email);
ALTER TABLE manifest_owners ENABLE ROW LEVEL SECURITY;
ALTER TABLE manifest_owners FORCE ROW LEVEL SECURITY;
CREATE POLICY manifest_owners_scope ON manifest_owners
    USING (tenant_id = app_tenant_id() OR app_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_system());
