-- Issue 19: the data lifecycle (SQLite dialect; same columns on both backends).
--
-- retention              the tenant's own retention settings, a `switchboard_crds::retention::
--                        RetentionSettings` JSON (`{}`: the platform defaults); the plan caps them.
-- admin_suspended_at     a platform admin suspended the tenant (only an admin resumes it; a
--                        restored deletion keeps it suspended).
-- deletion_requested_at  an owner asked for the tenant to be deleted: suspended, calls refused,
-- purge_after            everything removed by the data-lifecycle worker after this time
--                        (Unix ms) unless restored before.
ALTER TABLE tenants ADD COLUMN retention TEXT NOT NULL DEFAULT '{}';
ALTER TABLE tenants ADD COLUMN admin_suspended_at BIGINT;
ALTER TABLE tenants ADD COLUMN deletion_requested_at BIGINT;
ALTER TABLE tenants ADD COLUMN purge_after BIGINT;
CREATE INDEX tenants_purge_due ON tenants(purge_after);

-- What the platform did to tenants and accounts that must outlive them (a purged tenant, a
-- deleted account, an admin's suspension or plan override): ids and facts only, never a name,
-- an e-mail address or an IP address. No foreign key, so a purge leaves it in place.
CREATE TABLE platform_audit (
    id         TEXT PRIMARY KEY,
    action     TEXT NOT NULL,
    tenant_id  TEXT,
    actor      TEXT NOT NULL,
    details    TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE INDEX platform_audit_time ON platform_audit(created_at);
