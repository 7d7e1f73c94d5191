//! `switchboard-gateway`: the public control plane.
//!
//! The crate by role, from the edge inwards:
//!
//! **Edge** — [`http`] holds every HTTP handler, one module per resource (auth, tenants,
//! members, API keys, credentials, numbers, campaigns, calls, usage, billing, customer
//! webhooks, audit), the carrier/Stripe/PBX webhooks (`http::webhooks`), the media WebSocket
//! entry (`http::media`) and the cluster-internal API (`http::internal`), and assembles the
//! one router ([`app`]). [`standalone`] runs the whole platform on one host; [`workers`]
//! starts the background workers for both modes.
//!
//! **Domain** (never answers HTTP; its `thiserror` enums become answers in `http/errors.rs`):
//! * [`calls`] — admission of inbound and campaign calls, the call lifecycle, transfers, PBX
//!   CDRs;
//! * [`numbers`] — routing a dialled number to its tenant;
//! * [`carrier_accounts`] — which carrier account owns a number, with which secret;
//! * [`usage`] — metering and plan limits (the API-request meter included);
//! * [`billing`] — Stripe sessions, Stripe events, Stripe meter reporting;
//! * [`campaigns`] and [`dialer`] — campaign registration and progress; placing the calls;
//! * [`outbox`] — outbound customer webhooks, written with their cause and delivered later;
//! * [`media`] — call tokens, the per-tenant stream gate, the proxy to tenants' runtimes;
//! * [`provider_keys`] — tenants' provider keys projected into their namespaces;
//! * [`kube`] — the Tenant CR and Secrets the gateway applies;
//! * [`idempotency`] — the rules of `Idempotency-Key` on creating `POST`s;
//! * [`lifecycle`] — retention, tenant and account deletion, platform admins, re-encryption.
//!
//! **Foundations** — [`state`] (one named service per concern), [`config`] and
//! [`voice_config`], [`store`] (the only place with SQL: Postgres with row-level security, or
//! SQLite), [`crypto`], [`passwords`], [`tokens`], [`mailer`], [`ratelimit`], [`metrics`].
//!
//! Contracts shared with the operator and the runtime (internal-API bodies, tenant naming,
//! campaign rules, plan limits, runtime events) are `switchboard_crds`'s, not declared here.

pub mod billing;
pub mod calls;
pub mod campaigns;
pub mod carrier_accounts;
pub mod config;
pub mod credential_check;
pub mod crypto;
pub mod dialer;
pub mod drain;
pub mod embedded_agents;
pub mod http;
pub mod idempotency;
pub mod kube;
pub mod lifecycle;
pub mod mailer;
pub mod media;
pub mod metrics;
pub mod numbers;
pub mod outbox;
pub mod passwords;
pub mod provider_keys;
pub mod ratelimit;
pub mod recordings;
pub mod runtime_credential;
pub mod standalone;
pub mod state;
pub mod store;
pub mod tenant_carrier;
pub mod tenant_sync;
pub mod tokens;
pub mod usage;
pub mod voice_config;
pub mod workers;

pub use config::{Config, ConfigError};
pub use http::app;
pub use state::{AppState, StartupError};
