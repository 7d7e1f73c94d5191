//! The per-tenant voice runtime: carrier media streams → STT → LLM → TTS, with barge-in.
pub mod codec;
pub mod pacer;
pub mod protocol;
pub mod resample;
pub mod vad;
