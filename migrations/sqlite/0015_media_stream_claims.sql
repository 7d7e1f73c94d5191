-- One media stream per call token: the media entry claims the call here before it dials the
-- runtime, so a replayed token (within its lifetime) opens nothing.
CREATE TABLE media_stream_claims (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id    TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, call_id)
);
