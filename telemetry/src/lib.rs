//! What every Switchboard binary needs to be operable: structured logs, Prometheus metrics on
//! a metrics port of their own, `/healthz` + `/readyz`, and a shutdown signal for
//! SIGTERM/SIGINT.
//!
//! Kept in one small crate so the operator, gateway and runtime expose the same endpoints the
//! same way, and a Grafana dashboard or a kubelet probe works against any of them.

pub mod conventions;
pub mod health;
pub mod logging;
pub mod shutdown;

pub use health::{
    ReadinessCheck, health_router, observability_router, render_metrics, serve_observability,
};
pub use logging::{LogFormat, init_logging};
pub use shutdown::shutdown_signal;
