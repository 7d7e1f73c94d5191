//! Delivery of [`RuntimeEvent`]s to the gateway: queued without blocking the audio path,
//! batched, POSTed with a bearer token, retried with exponential backoff.

use std::time::Duration;

use switchboard_crds::events::{EventBatch, EventKind, RuntimeEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Secret;
use crate::metrics::Metrics;

/// Events waiting for delivery before new ones are dropped (and counted).
const QUEUE_CAPACITY: usize = 10_000;
/// Most events in one POST.
const BATCH_SIZE: usize = 100;
/// Delivery attempts of one batch before it is dropped.
const MAX_ATTEMPTS: u32 = 8;

/// Which call an event is about.
#[derive(Clone, Debug)]
pub struct CallRef {
    /// Tenant name.
    pub tenant: String,
    /// Gateway call id.
    pub call_id: String,
}

/// Cheap, cloneable handle that queues events for the delivery task.
#[derive(Clone, Debug)]
pub struct EventSink {
    tx: Option<mpsc::Sender<RuntimeEvent>>,
    metrics: Metrics,
}

impl EventSink {
    /// A sink delivering to `url`; returns the sink and the delivery task.
    pub fn spawn(
        url: Option<String>,
        token: Option<Secret>,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let Some(url) = url else {
            let task = tokio::spawn(async {});
            return (Self { tx: None, metrics }, task);
        };
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(deliver(url, token, rx, metrics.clone(), shutdown));
        (
            Self {
                tx: Some(tx),
                metrics,
            },
            task,
        )
    }

    /// Queues one event; never waits. A full queue drops the event (counted as `dropped`).
    pub fn emit(&self, call: &CallRef, kind: EventKind) {
        let event = RuntimeEvent {
            id: uuid::Uuid::new_v4().to_string(),
            tenant: call.tenant.clone(),
            call_id: call.call_id.clone(),
            occurred_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            kind,
        };
        let Some(tx) = &self.tx else {
            tracing::debug!(?event, "event (no gateway configured)");
            return;
        };
        if tx.try_send(event).is_err() {
            self.metrics.events.with_label_values(&["dropped"]).inc();
        }
    }
}

async fn deliver(
    url: String,
    token: Option<Secret>,
    mut rx: mpsc::Receiver<RuntimeEvent>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    // Ends when every sender is gone (all calls over and the sink dropped).
    while rx.recv_many(&mut batch, BATCH_SIZE).await > 0 {
        let body = EventBatch {
            events: std::mem::take(&mut batch),
        };
        let count = body.events.len() as u64;
        let outcome = if post_with_retries(&client, &url, token.as_ref(), &body, &shutdown).await {
            "delivered"
        } else {
            "dropped"
        };
        metrics.events.with_label_values(&[outcome]).inc_by(count);
    }
}

/// POSTs one batch until a 2xx, a non-retryable 4xx, or [`MAX_ATTEMPTS`].
async fn post_with_retries(
    client: &reqwest::Client,
    url: &str,
    token: Option<&Secret>,
    body: &EventBatch,
    shutdown: &CancellationToken,
) -> bool {
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=MAX_ATTEMPTS {
        let mut request = client.post(url).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return true,
            Ok(response)
                if response.status().is_client_error()
                    && response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS
                    && response.status() != reqwest::StatusCode::REQUEST_TIMEOUT =>
            {
                tracing::error!(status = %response.status(), "gateway rejected events; dropping batch");
                return false;
            }
            Ok(response) => {
                tracing::warn!(status = %response.status(), attempt, "event delivery failed")
            }
            Err(error) => tracing::warn!(%error, attempt, "event delivery failed"),
        }
        // While shutting down, retry quickly: the pod is about to go.
        let wait = if shutdown.is_cancelled() {
            Duration::from_millis(100)
        } else {
            delay
        };
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    false
}
