//! The media path: call tokens ([`call_token`]) issued at admission, the per-tenant stream
//! limit ([`gate`]), the WebSocket proxy from carriers to tenants' runtimes ([`proxy`]), and the
//! pruning of the one-stream-per-token claims once their tokens expired ([`claims`]).

pub mod call_token;
pub mod claims;
pub mod gate;
pub mod proxy;
