//! `switchboard-cli`: the `switchboard` command-line client.
//!
//! * [`session`] — the stored login (0600 file under `$XDG_CONFIG_HOME/switchboard/`).
//! * [`api`] — the gateway's REST API and its JSON error shape.
//! * [`commands`] — signup, login, logout, whoami, tenants, numbers.
//! * [`call`] — a simulated inbound Twilio call: signed voice webhook ([`webhook`]), TwiML
//!   ([`twiml`]), Twilio Media Streams over WebSocket ([`media`]) and WAV audio ([`audio`]).

pub mod api;
pub mod audio;
pub mod call;
pub mod commands;
pub mod media;
pub mod progress;
pub mod session;
pub mod twiml;
pub mod webhook;
