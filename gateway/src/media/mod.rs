//! The media path: call tokens ([`call_token`]) issued at admission, the per-tenant stream
//! limit ([`gate`]), and the WebSocket proxy from carriers to tenants' runtimes ([`proxy`]).

pub mod call_token;
pub mod gate;
pub mod proxy;
