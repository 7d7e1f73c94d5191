//! The HTTP side: media WebSocket endpoints, the per-pod call limit, readiness and draining.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use switchboard_telemetry::ReadinessCheck;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::call::{CallContext, run_call};
use crate::config::{ConfigStore, RuntimeConfig};
use crate::events::EventSink;
use crate::metrics::Metrics;
use crate::protocol::Carrier;

/// Largest WebSocket message accepted from a carrier (a 20 ms frame is ~300 bytes).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Socket read chunk: small, because a pod holds thousands of sockets and tungstenite zeroes
/// the chunk on every read (a 20 ms frame message is ~300 bytes).
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// Shared state of the runtime's HTTP server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RuntimeState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ctx: CallContext,
    store: Arc<ConfigStore>,
    limiter: Arc<Semaphore>,
    draining: AtomicBool,
    calls: TaskTracker,
}

impl RuntimeState {
    /// State for a runtime with `config`, agent configuration from `store`, and `events`.
    pub fn new(
        config: RuntimeConfig,
        store: Arc<ConfigStore>,
        metrics: Metrics,
        events: EventSink,
    ) -> Self {
        let limiter = Arc::new(Semaphore::new(config.max_concurrent_calls));
        metrics
            .max_concurrent_calls
            .set(i64::try_from(config.max_concurrent_calls).unwrap_or(i64::MAX));
        let http = crate::providers::http_client(config.outbound_allow_private);
        Self {
            inner: Arc::new(Inner {
                ctx: CallContext {
                    config: Arc::new(config),
                    metrics,
                    events,
                    http,
                    hard_stop: CancellationToken::new(),
                },
                store,
                limiter,
                draining: AtomicBool::new(false),
                calls: TaskTracker::new(),
            }),
        }
    }

    /// The runtime's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.ctx.metrics
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.inner.calls.len()
    }

    /// True once draining started.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Readiness for `/readyz`: not ready while draining (so the Service stops routing here).
    pub fn readiness(&self) -> ReadinessCheck {
        let state = self.clone();
        Arc::new(move || {
            let draining = state.is_draining();
            Box::pin(async move {
                if draining {
                    Err("draining".to_owned())
                } else {
                    Ok(())
                }
            })
        })
    }

    /// Stops taking calls and waits up to `deadline` for live calls to finish; then ends the
    /// rest (they say nothing more, emit `callEnded` with reason `shutdown`). Returns true when
    /// every call finished on its own.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.inner.calls.close();
        let active = self.active_calls();
        tracing::info!(active, ?deadline, "draining: waiting for live calls");
        let graceful = tokio::time::timeout(deadline, self.inner.calls.wait())
            .await
            .is_ok();
        if !graceful {
            tracing::warn!(
                active = self.active_calls(),
                "drain deadline passed; ending calls"
            );
            self.inner.ctx.hard_stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.calls.wait()).await;
        }
        graceful
    }
}

/// The media WebSocket routes (`/media/twilio`, `/media/telnyx`), for embedding in the gateway.
pub fn router(state: RuntimeState) -> Router {
    Router::new()
        .route("/media/twilio", get(twilio))
        .route("/media/telnyx", get(telnyx))
        .with_state(state)
}

async fn twilio(State(state): State<RuntimeState>, upgrade: WebSocketUpgrade) -> Response {
    accept(state, upgrade, Carrier::Twilio)
}

async fn telnyx(State(state): State<RuntimeState>, upgrade: WebSocketUpgrade) -> Response {
    accept(state, upgrade, Carrier::Telnyx)
}

/// Takes the call if there is room; refuses with 503 before upgrading otherwise, so the
/// gateway can tell the carrier (or try another pod) instead of the caller hearing silence.
fn accept(state: RuntimeState, upgrade: WebSocketUpgrade, carrier: Carrier) -> Response {
    let metrics = &state.inner.ctx.metrics;
    if state.is_draining() {
        metrics.calls_refused.with_label_values(&["draining"]).inc();
        return (StatusCode::SERVICE_UNAVAILABLE, "runtime is shutting down").into_response();
    }
    let Ok(permit) = state.inner.limiter.clone().try_acquire_owned() else {
        metrics.calls_refused.with_label_values(&["full"]).inc();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "runtime is at its call limit",
        )
            .into_response();
    };
    // The tenant's configuration is taken once the `start` message names the tenant.
    let store = state.inner.store.clone();
    let ctx = state.inner.ctx.clone();
    let tracker = state.inner.calls.clone();
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            tracker.track_future(async move {
                run_call(socket, carrier, store, ctx).await;
                drop(permit);
            })
        })
}
