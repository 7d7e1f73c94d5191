//! `switchboard-cli`: the `switchboard` command-line client.
//!
//! * [`session`] — the stored login (0600 file under `$XDG_CONFIG_HOME/switchboard/`).
//! * [`api`] — the gateway's REST API transport and its JSON error shape.
//! * [`commands`] — the session: signup, login, logout, token refresh, the chosen tenant.
//! * [`client`] — the typed client: one method per API operation, typed bodies, and the
//!   contract the tests hold against the gateway's OpenAPI document.
//! * [`resources`] — the tenant resource commands (agents, credentials, numbers, campaigns,
//!   calls, usage, webhooks, API keys, members, invitations, billing); [`output`] prints them.
//! * [`call`] — a simulated inbound Twilio call: signed voice webhook ([`webhook`]), TwiML
//!   ([`twiml`]), Twilio Media Streams over WebSocket ([`media`]) and WAV audio ([`audio`]).

pub mod api;
pub mod audio;
pub mod call;
pub mod client;
pub mod commands;
pub mod media;
pub mod output;
pub mod progress;
pub mod resources;
pub mod session;
pub mod twiml;
pub mod webhook;
