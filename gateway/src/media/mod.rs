//! The media entry point: call tokens and the WebSocket proxy to tenants' runtimes.

pub mod call_token;
pub mod proxy;
