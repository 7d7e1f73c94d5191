//! What every Switchboard binary needs to be operable: structured logs, Prometheus metrics,
//! `/healthz` + `/readyz` + `/metrics`, and a shutdown signal for SIGTERM/SIGINT.
//!
//! Kept in one small crate so the operator, gateway and runtime expose the same endpoints the
//! same way, and a Grafana dashboard or a kubelet probe works against any of them.

pub mod health;
pub mod logging;
pub mod shutdown;

pub use health::{ReadinessCheck, observability_router, render_metrics};
pub use logging::{LogFormat, init_logging};
pub use shutdown::shutdown_signal;
