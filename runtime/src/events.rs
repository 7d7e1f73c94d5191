//! Delivery of [`RuntimeEvent`]s to the gateway: queued without blocking the audio path,
//! batched, POSTed with a bearer token, retried with exponential backoff.
//!
//! The token is the tenant's runtime credential ([`Credential`]); when it comes from a mounted
//! file it is re-read on every attempt, and a refusal (401) is retried like an outage: after a
//! rotation the gateway refuses the old credential at once, and the kubelet refreshes the
//! mounted Secret shortly after, so the batch goes through with the new one instead of being
//! dropped.

use std::time::Duration;

use switchboard_crds::events::{EventBatch, EventKind, RuntimeEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Secret;
use crate::credential::Credential;
use crate::metrics::Metrics;

/// Events waiting for delivery before new ones are dropped (and counted).
const QUEUE_CAPACITY: usize = 10_000;
/// Most events in one POST.
const BATCH_SIZE: usize = 100;
/// Delivery attempts of one batch before it is dropped.
const MAX_ATTEMPTS: u32 = 8;
/// Delivery attempts of one batch refused as unauthorized while the credential is a mounted
/// file: with the 10 s backoff cap about three minutes, longer than the kubelet takes to
/// refresh a mounted Secret (its sync period, one minute by default, plus its cache TTL).
const ROTATION_ATTEMPTS: u32 = 22;

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
    /// A sink delivering to `url` with a fixed token; returns the sink and the delivery task.
    pub fn spawn(
        url: Option<String>,
        token: Option<Secret>,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        Self::spawn_with_credential(url, token.map(Credential::Fixed), metrics, shutdown)
    }

    /// A sink delivering to `url` with `credential` (read anew on every attempt); returns the
    /// sink and the delivery task.
    pub fn spawn_with_credential(
        url: Option<String>,
        token: Option<Credential>,
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
    token: Option<Credential>,
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

/// Whether a refusal with `status` is final: other 4xx are, except throttling, timeouts and,
/// with a credential that `refreshes`, 401 (a rotation not yet mounted).
fn is_final(status: reqwest::StatusCode, refreshes: bool) -> bool {
    status.is_client_error()
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS
        && status != reqwest::StatusCode::REQUEST_TIMEOUT
        && !(refreshes && status == reqwest::StatusCode::UNAUTHORIZED)
}

/// POSTs one batch until a 2xx, a non-retryable 4xx, or [`MAX_ATTEMPTS`] ([`ROTATION_ATTEMPTS`]
/// while the last refusal was a 401 with a refreshing credential).
async fn post_with_retries(
    client: &reqwest::Client,
    url: &str,
    token: Option<&Credential>,
    body: &EventBatch,
    shutdown: &CancellationToken,
) -> bool {
    let mut delay = Duration::from_millis(200);
    let refreshes = token.is_some_and(Credential::refreshes);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = client.post(url).json(body);
        if let Some(token) = token.and_then(Credential::current) {
            request = request.bearer_auth(token.expose());
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return true,
            Ok(response) if is_final(response.status(), refreshes) => {
                tracing::error!(status = %response.status(), "gateway rejected events; dropping batch");
                return false;
            }
            Ok(response) => {
                let limit = if response.status() == reqwest::StatusCode::UNAUTHORIZED {
                    ROTATION_ATTEMPTS
                } else {
                    MAX_ATTEMPTS
                };
                tracing::warn!(status = %response.status(), attempt, "event delivery failed");
                if attempt >= limit {
                    return false;
                }
            }
            Err(error) => {
                tracing::warn!(%error, attempt, "event delivery failed");
                if attempt >= MAX_ATTEMPTS {
                    return false;
                }
            }
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

    /// A gateway accepting only `Bearer {accepted}`; records the tokens it was shown.
    async fn gateway_accepting(accepted: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
        let shown: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = shown.clone();
        let app = Router::new().route(
            "/events",
            post(move |headers: axum::http::HeaderMap| {
                let log = log.clone();
                async move {
                    let token = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .trim_start_matches("Bearer ")
                        .to_owned();
                    let ok = token == accepted;
                    log.lock().unwrap().push(token);
                    if ok {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::UNAUTHORIZED
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/events"), shown)
    }

    fn ended(sink: &EventSink) {
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
    }

    #[tokio::test]
    async fn a_rotated_credential_file_is_picked_up_and_the_refused_batch_delivered() {
        let (url, shown) = gateway_accepting("rotated").await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "old").unwrap();
        let metrics = Metrics::new("t").unwrap();
        let (sink, task) = EventSink::spawn_with_credential(
            Some(url),
            Some(Credential::File(path.clone())),
            metrics.clone(),
            CancellationToken::new(),
        );
        ended(&sink);
        // The kubelet refreshes the mount after the gateway refused the old credential.
        for _ in 0..100 {
            if !shown.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        std::fs::write(&path, "rotated\n").unwrap();
        drop(sink);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        let shown = shown.lock().unwrap().clone();
        assert_eq!(shown.first().map(String::as_str), Some("old"), "{shown:?}");
        assert_eq!(
            shown.last().map(String::as_str),
            Some("rotated"),
            "{shown:?}"
        );
        assert_eq!(metrics.events.with_label_values(&["delivered"]).get(), 1);
    }

    #[tokio::test]
    async fn a_fixed_credential_refused_is_dropped_without_retries() {
        let (url, shown) = gateway_accepting("other").await;
        let metrics = Metrics::new("t").unwrap();
        let (sink, task) = EventSink::spawn(
            Some(url),
            Some(Secret::new("fixed")),
            metrics.clone(),
            CancellationToken::new(),
        );
        ended(&sink);
        drop(sink);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(shown.lock().unwrap().len(), 1);
        assert_eq!(metrics.events.with_label_values(&["dropped"]).get(), 1);
    }
}
