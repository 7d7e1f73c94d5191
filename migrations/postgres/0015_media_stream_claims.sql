-- One media stream per call token: the media entry claims the call here before it dials the
-- runtime, so a replayed token (within its lifetime, on any gateway replica) opens nothing.
CREATE TABLE media_stream_claims (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id    TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, call_id)
);
ALTER TABLE media_stream_claims ENABLE ROW LEVEL SECURITY;
ALTER TABLE media_stream_claims FORCE ROW LEVEL SECURITY;
CREATE POLICY media_stream_claims_scope ON media_stream_claims
    USING (tenant_id = app_tenant_id() OR app_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_system());
