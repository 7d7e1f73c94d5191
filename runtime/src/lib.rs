//! `switchboard-runtime`: the per-tenant voice runtime.
//!
//! Carrier media streams (Twilio Media Streams, Telnyx media streaming) arrive over WebSocket
//! (proxied by the gateway) and are turned into conversations: G.711 decoding, voice-activity
//! and end-of-turn detection, speech-to-text, a streamed language-model reply spoken
//! sentence by sentence, barge-in, and usage/transcript events to the gateway.
//!
//! Used as a binary (`switchboard-runtime`) in Kubernetes, or embedded by the gateway in
//! standalone mode through [`router`] and [`RuntimeState`].

pub mod call;
pub mod codec;
pub mod config;
pub mod credential;
pub mod eval;
pub mod events;
pub mod metrics;
pub mod pacer;
pub mod protocol;
pub mod providers;
pub mod recording;
pub(crate) mod reply;
pub mod resample;
pub mod server;
pub mod turn;
pub mod vad;

pub use config::{
    AgentSnapshot, ConfigSource, ConfigStore, ProviderKeys, RuntimeConfig, Secret, StageCredential,
};
pub use credential::Credential;
pub use events::EventSink;
pub use metrics::Metrics;
pub use server::{RuntimeState, router};
