-- Issue 19 item 1: call recordings (Postgres dialect; same columns on both backends).
--
-- One row per recorded call, written by the gateway once the runtime's WAV file is stored
-- (`gateway/src/recordings`). Where the object lives:
--   storage 's3'    the tenant's own S3-compatible bucket: `credential_id` names the stored
--                   `s3` credential used (its endpoint, region and keys), `bucket` and
--                   `object_key` the object at the time it was written;
--   storage 'local' standalone mode's data folder: `object_key` relative to its
--                   `recordings/` folder.
-- format 'wav' (16-bit PCM, 8 kHz), channels 1 (mixed) or 2 (caller left, agent right).
-- No foreign key to calls: retention removes recordings before their call records, and a
-- recording may arrive before the call's last event.
CREATE TABLE call_recordings (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id       TEXT NOT NULL,
    storage       TEXT NOT NULL,
    credential_id TEXT,
    bucket        TEXT,
    object_key    TEXT NOT NULL,
    format        TEXT NOT NULL,
    channels      BIGINT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    bytes         BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX call_recordings_call ON call_recordings(tenant_id, call_id);
CREATE INDEX call_recordings_time ON call_recordings(tenant_id, created_at);
ALTER TABLE call_recordings ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_recordings FORCE ROW LEVEL SECURITY;
CREATE POLICY call_recordings_scope ON call_recordings
    USING (tenant_id = app_tenant_id() OR app_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_system());
