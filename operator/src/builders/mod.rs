//! Desired state as pure functions: spec in, Kubernetes objects out. Nothing here talks to the
//! API server, so every rule about what a tenant's stack looks like is unit-testable and the
//! `render` command shows exactly what the controller would apply.

pub mod access;
pub mod campaign;
pub mod labels;
pub mod network;
pub mod quota;
pub mod runtime;
pub mod tenant;

pub use tenant::{InvalidTenant, TenantStack, desired_stack};
