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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::routing::post;
    use axum::{Json, Router};
    use switchboard_crds::events::{EndReason, EventBatch};

    use super::*;

    #[tokio::test]
    async fn failed_posts_are_retried_with_the_same_event_ids() {
        // (attempt, event ids) of every POST received.
        type Log = Arc<Mutex<Vec<(u32, Vec<String>)>>>;
        let received: Log = Arc::default();
        let attempts = Arc::new(Mutex::new(0u32));
        let (log, counter) = (received.clone(), attempts.clone());
        let app = Router::new().route(
            "/events",
            post(move |Json(batch): Json<EventBatch>| {
                let (log, counter) = (log.clone(), counter.clone());
                async move {
                    let attempt = {
                        let mut n = counter.lock().unwrap();
                        *n += 1;
                        *n
                    };
                    log.lock()
                        .unwrap()
                        .push((attempt, batch.events.iter().map(|e| e.id.clone()).collect()));
                    if attempt == 1 {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let metrics = Metrics::new("t").unwrap();
        let (sink, task) = EventSink::spawn(
            Some(format!("http://{addr}/events")),
            None,
            metrics.clone(),
            CancellationToken::new(),
        );
        let call = CallRef {
            tenant: "acme".into(),
            call_id: "c1".into(),
        };
        sink.emit(
            &call,
            EventKind::CallEnded {
                reason: EndReason::CallerHangup,
                duration_ms: 1,
                turns: 0,
            },
        );
        drop(sink);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        let received = received.lock().unwrap().clone();
        assert_eq!(received.len(), 2, "one failure, one retry");
        assert_eq!(received[0].1, received[1].1, "same event id on retry");
        assert_eq!(metrics.events.with_label_values(&["delivered"]).get(), 1);
    }
}
