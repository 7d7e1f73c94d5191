-- Part 2: number routing, usage metering, call records, CDR credentials, customer webhooks,
-- Stripe billing and campaign registration (SQLite dialect; same columns as Postgres).
-- Numbered 0010 to leave 0002-0009 to the accounts part, which is still evolving.

-- Dialled-number routing: which tenant a number belongs to and whose carrier account owns it
-- (`platform`: the platform's account signs its webhooks; `tenant`: the tenant's own stored
-- credentials do).
CREATE TABLE phone_numbers (
    e164       TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    carrier    TEXT NOT NULL,
    account    TEXT NOT NULL DEFAULT 'platform' CHECK (account IN ('platform', 'tenant')),
    agent      TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX phone_numbers_tenant ON phone_numbers(tenant_id);

-- Monthly usage per tenant; `period` is `YYYY-MM` in UTC.
CREATE TABLE usage_counters (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    period         TEXT NOT NULL,
    call_count     BIGINT NOT NULL DEFAULT 0,
    call_minutes   BIGINT NOT NULL DEFAULT 0,
    api_requests   BIGINT NOT NULL DEFAULT 0,
    stt_ms         BIGINT NOT NULL DEFAULT 0,
    tts_characters BIGINT NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period)
);

-- Every metered event once: a replayed id changes nothing.
CREATE TABLE usage_events (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    period     TEXT NOT NULL,
    metric     TEXT NOT NULL,
    amount     BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Threshold notices already raised (80 and 100 percent), so each is raised once a month.
CREATE TABLE usage_alerts (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    period     TEXT NOT NULL,
    metric     TEXT NOT NULL,
    level      BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period, metric, level)
);

-- Call records from carrier callbacks, runtime events and PBX CDRs.
CREATE TABLE calls (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    carrier          TEXT NOT NULL,
    carrier_call_id  TEXT,
    direction        TEXT NOT NULL,
    from_number      TEXT,
    to_number        TEXT,
    status           TEXT NOT NULL,
    outcome          TEXT,
    started_at       BIGINT NOT NULL,
    answered_at      BIGINT,
    ended_at         BIGINT,
    duration_seconds BIGINT,
    turns            BIGINT,
    campaign         TEXT,
    contact          TEXT,
    source           TEXT NOT NULL DEFAULT 'carrier',
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX calls_carrier_call ON calls(tenant_id, carrier, carrier_call_id);
CREATE INDEX calls_tenant_time ON calls(tenant_id, started_at);

-- Transcript turns of a call (the call record's transcript reference points here).
CREATE TABLE call_turns (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id   TEXT NOT NULL,
    idx       BIGINT NOT NULL,
    role      TEXT NOT NULL,
    text      TEXT NOT NULL,
    offset_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, call_id, idx)
);

-- Runtime event ids already applied (the runtime retries, so events may arrive twice).
CREATE TABLE runtime_events (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Basic-auth credentials a tenant's PBX uses to post CDRs (password stored as SHA-256 of a
-- 256-bit random secret).
CREATE TABLE cdr_credentials (
    tenant_id     TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Outbound customer webhooks: endpoints, the outbox (survives restarts) and the delivery log.
CREATE TABLE webhook_endpoints (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    ciphertext  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    disabled_at BIGINT
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints(tenant_id);

CREATE TABLE webhook_outbox (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox(status, next_attempt_at);

CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    outbox_id   TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    status_code BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries(tenant_id, created_at);

-- Stripe: a tenant's customer and subscription, and the event ids already processed.
CREATE TABLE billing_accounts (
    tenant_id           TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    stripe_customer_id  TEXT UNIQUE,
    subscription_id     TEXT,
    subscription_status TEXT,
    price_id            TEXT,
    current_period_end  BIGINT,
    limit_overrides     TEXT NOT NULL DEFAULT '{}',
    updated_at          BIGINT NOT NULL
);

CREATE TABLE stripe_events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

-- Campaigns registered by the operator and their contacts.
CREATE TABLE campaigns (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    uid         TEXT NOT NULL,
    generation  BIGINT NOT NULL,
    spec        TEXT NOT NULL,
    from_number TEXT NOT NULL,
    phase       TEXT NOT NULL,
    deleted_at  BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE campaign_contacts (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    campaign   TEXT NOT NULL,
    id         TEXT NOT NULL,
    phone      TEXT NOT NULL,
    name       TEXT,
    variables  TEXT NOT NULL DEFAULT '{}',
    state      TEXT NOT NULL DEFAULT 'pending',
    attempts   BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign, id)
);
