//! `switchboard-gateway`: the public control plane.
//!
//! Part 1 (this crate's foundation): accounts (signup, login, rotating refresh tokens, e-mail
//! verification and password reset), tenants with members, roles and invitations, customer API
//! keys, bring-your-own provider credentials encrypted with AES-256-GCM, an audit log, and the
//! cross-cutting HTTP concerns (JSON errors, rate limits, request ids, CORS, body limits,
//! metrics, readiness). Storage is one [`store::Store`] over Postgres (production, with
//! row-level security) or SQLite (the embedded default).
//!
//! Later parts add routes by merging routers onto [`app`]'s result and new migrations under
//! `migrations/{postgres,sqlite}/` with the next number.

pub mod billing;
pub mod calls;
pub mod campaigns;
pub mod config;
pub mod crypto;
pub mod customer_webhooks;
pub mod dialer;
pub mod http;
pub mod kube;
pub mod mailer;
pub mod passwords;
pub mod ratelimit;
pub mod state;
pub mod store;
pub mod tokens;

// Part 2: carrier webhooks, media entry, usage and limits, call records, billing, outbox.
pub mod internal;
pub mod media;
pub mod meter;
pub mod numbers;
pub mod outbox;
pub mod routes;
// Issue 8: the single-host platform (gateway + embedded runtime + sandbox carrier).
pub mod standalone;
pub mod telephony;
pub mod usage;
pub mod voice_config;
pub mod webhooks;

pub use config::{Config, ConfigError};
pub use http::app;
pub use state::{AppState, StartupError};
