-- Issue 7: the campaign dialer (SQLite dialect; same columns as Postgres).
--
-- Every dial is an attempt row written (with the contact moved to `dialing`) in the same
-- transaction, before the carrier is called. The attempt id is the idempotency key handed to
-- the carrier; `(tenant_id, campaign, contact_id, seq)` is unique, so two dialers can never
-- record the same attempt of a contact, and an attempt left `dialing` by a crash is settled as
-- `unknown` and never re-dialled.
ALTER TABLE campaign_contacts ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_contacts ADD COLUMN dial_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_contacts ADD COLUMN last_outcome TEXT;
ALTER TABLE campaign_contacts ADD COLUMN last_call_id TEXT;
CREATE INDEX campaign_contacts_due ON campaign_contacts(tenant_id, campaign, state, next_attempt_at);

-- Why the dialer is not dialling a campaign right now (`Suspended`, `TenantSuspended`,
-- `PlanLimitReached`, `OutsideWindow`, …); NULL while it dials.
ALTER TABLE campaigns ADD COLUMN reason TEXT;

CREATE TABLE campaign_attempts (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    campaign        TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    call_id         TEXT NOT NULL,
    dialer          TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('dialing', 'placed', 'ended')),
    outcome         TEXT,
    counts          BIGINT NOT NULL DEFAULT 1,
    carrier_call_id TEXT,
    created_at      BIGINT NOT NULL,
    placed_at       BIGINT,
    ended_at        BIGINT,
    settled_at      BIGINT,
    UNIQUE (tenant_id, campaign, contact_id, seq)
);
CREATE INDEX campaign_attempts_state ON campaign_attempts(tenant_id, campaign, state);
CREATE INDEX campaign_attempts_started ON campaign_attempts(tenant_id, campaign, created_at);
CREATE INDEX campaign_attempts_call ON campaign_attempts(tenant_id, call_id);

-- Survey answers per contact: the caller's words and the value the language model mapped.
CREATE TABLE campaign_answers (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    campaign   TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    field      TEXT NOT NULL,
    raw        TEXT NOT NULL,
    value      TEXT NOT NULL,
    call_id    TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign, contact_id, field)
);

-- Numbers a tenant must never call (honoured by registration, upload and the dialer).
CREATE TABLE do_not_call (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    phone      TEXT NOT NULL,
    reason     TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, phone)
);
