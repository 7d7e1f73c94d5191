//! `/healthz`, `/readyz` and `/metrics`.
//!
//! Liveness answers as long as the process serves HTTP; readiness asks the binary (database
//! reachable, leader elected, draining…), so a pod leaves the Service endpoints before it stops.
//!
//! `/metrics` is only ever served on a separate metrics port ([`serve_observability`]), never
//! on a public or media port: metrics name tenants and carry business figures, and a port of
//! its own lets NetworkPolicies admit the monitoring namespace to it and nothing else. The
//! serving ports keep `/healthz` and `/readyz` ([`health_router`]) so probes and load
//! balancers check the port that actually serves.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use futures::future::BoxFuture;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::task::JoinHandle;

/// Asks a binary whether it can take traffic. `Err` carries the reason shown on `/readyz`.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

#[derive(Clone)]
struct ObservabilityState {
    registry: Registry,
    ready: ReadinessCheck,
}

/// A router with `/healthz` and `/readyz` only, for a public or media port.
pub fn health_router<S>(ready: ReadinessCheck) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(ObservabilityState {
            registry: Registry::new(),
            ready,
        })
}

/// A router with `/healthz`, `/readyz` and `/metrics` (Prometheus text format), for the
/// metrics port.
///
/// The process collector (memory, CPU, open fds) is registered into `registry` on Linux.
pub fn observability_router<S>(registry: Registry, ready: ReadinessCheck) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    register_process_collector(&registry);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ObservabilityState { registry, ready })
}

/// Binds `listen` and serves [`observability_router`] there until `shutdown` resolves.
///
/// Returns the bound address (useful with port 0) and the server task. Binding happens
/// before returning, so a taken port fails the binary's start instead of a background task.
pub async fn serve_observability(
    listen: SocketAddr,
    registry: Registry,
    ready: ReadinessCheck,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let app: Router = observability_router(registry, ready);
    tracing::info!(%address, "serving /metrics, /healthz and /readyz");
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((address, task))
}

#[cfg(target_os = "linux")]
fn register_process_collector(registry: &Registry) {
    // Registering twice (several routers on one registry) fails harmlessly.
    let _ = registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ));
}

#[cfg(not(target_os = "linux"))]
fn register_process_collector(_registry: &Registry) {}

async fn readyz(State(state): State<ObservabilityState>) -> impl IntoResponse {
    match (state.ready)().await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}"),
        ),
    }
}

async fn metrics(State(state): State<ObservabilityState>) -> impl IntoResponse {
    match render_metrics(&state.registry) {
        Ok(body) => (
            StatusCode::OK,
            [("content-type", "text/plain; version=0.0.4")],
            body,
        ),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/plain")],
            format!("cannot encode metrics: {error}"),
        ),
    }
}

/// Renders every metric of `registry` in the Prometheus text exposition format.
pub fn render_metrics(registry: &Registry) -> Result<String, prometheus::Error> {
    let mut buffer = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buffer)?;
    String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::Request;
    use tower::ServiceExt;

    fn router(ready: Result<(), String>) -> Router {
        let check: ReadinessCheck = Arc::new(move || {
            let ready = ready.clone();
            Box::pin(async move { ready })
        });
        observability_router(Registry::new(), check)
    }

    async fn status_of(router: Router, path: &str) -> StatusCode {
        let request = Request::get(path).body(Body::empty()).unwrap();
        router.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn readyz_reflects_the_readiness_check() {
        assert_eq!(status_of(router(Ok(())), "/readyz").await, StatusCode::OK);
        let not_ready = router(Err("database down".into()));
        assert_eq!(
            status_of(not_ready.clone(), "/readyz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        // Liveness does not depend on readiness.
        assert_eq!(status_of(not_ready, "/healthz").await, StatusCode::OK);
    }

    #[tokio::test]
    async fn the_health_router_serves_no_metrics() {
        let check: ReadinessCheck = Arc::new(|| Box::pin(async { Ok(()) }));
        let router: Router = health_router(check);
        assert_eq!(status_of(router.clone(), "/healthz").await, StatusCode::OK);
        assert_eq!(status_of(router.clone(), "/readyz").await, StatusCode::OK);
        assert_eq!(status_of(router, "/metrics").await, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn metrics_are_served_in_text_format() {
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new("demo_total", "a demo counter").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc();
        let text = render_metrics(&registry).unwrap();
        assert!(text.contains("demo_total 1"), "{text}");
    }
}
