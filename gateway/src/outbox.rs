//! Outbound customer webhooks (`call.completed`, `recording.saved`, `campaign.finished`,
//! `usage.threshold`).
//!
//! Events are written to the `webhook_outbox` table in the same transaction as the change
//! that caused them, so a crash can lose neither; a worker delivers due rows, signed the
//! Standard Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64
//! HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` with the key = base64 after `whsec_`), and
//! retries failures with exponential backoff. Every attempt lands in `webhook_deliveries`.
//! After a secret rotation the replaced secret signs too until its grace period ends (two
//! space-separated `v1,…` signatures, as Standard Webhooks allows and Svix does), so
//! receivers switch secrets without rejecting a message.
//! A row is leased (its next attempt pushed out) before sending, so two replicas do not
//! deliver the same message at once; receivers dedupe on `webhook-id` as the spec asks.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::AnyConnection;

use crate::crypto::{Keyring, Sealed};
use crate::store::webhooks::{self, EndpointRow, OutboxRow};
use crate::store::{Store, StoreError, new_id, now_ms, system};

/// Event types a customer can subscribe to.
pub const EVENT_TYPES: [&str; 4] = [
    "call.completed",
    "recording.saved",
    "campaign.finished",
    "usage.threshold",
];

/// Attempts before a delivery is marked failed (about a day and a half of backoff).
pub const MAX_ATTEMPTS: i64 = 12;

/// How long a leased delivery is hidden from other workers.
const LEASE_MS: i64 = 60_000;

/// Associated data binding a sealed endpoint secret to its tenant and endpoint.
pub fn secret_aad(tenant_id: &str, endpoint_id: &str) -> String {
    format!("webhook-endpoint:{tenant_id}:{endpoint_id}")
}

/// Queues `event_type` for every endpoint of the tenant that subscribed to it, in the
/// caller's transaction. Returns how many deliveries were queued.
pub async fn enqueue_event(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_type: &str,
    data: Value,
) -> Result<usize, StoreError> {
    let now = now_ms();
    let endpoints = webhooks::endpoints(&mut *conn, tenant_id).await?;
    let mut queued = 0;
    for endpoint in endpoints.iter().filter(|e| e.wants(event_type)) {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let payload = json!({
            "type": event_type,
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "data": data,
        })
        .to_string();
        webhooks::enqueue(
            &mut *conn,
            &id,
            tenant_id,
            &endpoint.id,
            event_type,
            &payload,
            now,
        )
        .await?;
        queued += 1;
    }
    Ok(queued)
}

/// The `webhook-signature` value for a message (Standard Webhooks `v1`).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// A new endpoint secret: `whsec_` + base64 of 24 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::fill(&mut bytes);
    format!("whsec_{}", BASE64.encode(bytes))
}

/// Delay before attempt `attempts + 1`: 5 s doubling per attempt, capped at 6 hours.
pub fn backoff_ms(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    (5_000i64.saturating_mul(1i64 << exponent)).min(6 * 3_600_000)
}

/// Delivers due outbox rows.
#[derive(Clone)]
pub struct OutboxWorker {
    store: Store,
    keyring: std::sync::Arc<Keyring>,
    client: reqwest::Client,
    allow_private: bool,
}

impl OutboxWorker {
    /// A worker over the store, decrypting endpoint secrets with `keyring`. `client` should
    /// come from `switchboard_crds::outbound::guarded_client` (no redirects, public addresses
    /// only); `allow_private` is `SWITCHBOARD_OUTBOUND_ALLOW_PRIVATE`, with which each
    /// endpoint URL is checked again before every delivery.
    pub fn new(
        store: Store,
        keyring: std::sync::Arc<Keyring>,
        client: reqwest::Client,
        allow_private: bool,
    ) -> Self {
        Self {
            store,
            keyring,
            client,
            allow_private,
        }
    }

    /// One pass: leases and sends every due delivery. Returns how many were attempted.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let mut tx = system::write(&self.store).await?;
        let due = webhooks::due(&mut tx, now, 32).await?;
        let mut leased = Vec::new();
        for row in due {
            if webhooks::lease(&mut tx, &row.id, row.next_attempt_at, now + LEASE_MS).await? {
                let endpoint =
                    webhooks::endpoint(&mut tx, &row.tenant_id, &row.endpoint_id).await?;
                leased.push((row, endpoint));
            }
        }
        tx.commit().await?;
        let count = leased.len();
        for (row, endpoint) in leased {
            self.attempt(row, endpoint).await?;
        }
        Ok(count)
    }

    async fn attempt(
        &self,
        row: OutboxRow,
        endpoint: Option<EndpointRow>,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = match &endpoint {
            Some(endpoint) => self.send(&row, endpoint).await,
            None => Err((None, "endpoint was deleted".to_owned())),
        };
        let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        let (status, next, code, error) = match result {
            Ok(code) => ("delivered", now, Some(code), None),
            Err((code, error)) if row.attempts + 1 >= MAX_ATTEMPTS || endpoint.is_none() => {
                ("failed", now, code, Some(error))
            }
            Err((code, error)) => ("pending", now + backoff_ms(row.attempts), code, Some(error)),
        };
        let mut tx = system::write(&self.store).await?;
        webhooks::finish_attempt(
            &mut tx,
            &row,
            status,
            next,
            code,
            error.as_deref(),
            elapsed,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn send(
        &self,
        row: &OutboxRow,
        endpoint: &EndpointRow,
    ) -> Result<i64, (Option<i64>, String)> {
        // An IP literal never reaches the client's resolver: check the URL itself too. The
        // delivery log then says "refused", never the status of an internal service.
        switchboard_crds::outbound::check_url(&endpoint.url, self.allow_private)
            .map_err(|e| (None, format!("refused: {e}")))?;
        let now = now_ms();
        let timestamp = now / 1000;
        let mut signatures = Vec::with_capacity(2);
        for secret in signing_secrets(&self.keyring, endpoint, now)? {
            signatures.push(
                sign(&secret, &row.id, timestamp, &row.payload)
                    .ok_or_else(|| (None, "endpoint secret is not base64".to_owned()))?,
            );
        }
        // Standard Webhooks: several signatures, space-separated; a receiver accepts the
        // message when any of them verifies with its secret.
        let signature = signatures.join(" ");
        let response = self
            .client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &row.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(row.payload.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| (None, format!("request failed: {}", e.without_url())))?;
        let code = i64::from(response.status().as_u16());
        if response.status().is_success() {
            Ok(code)
        } else {
            Err((Some(code), format!("endpoint answered {code}")))
        }
    }

    /// Polls every `every` until the task is aborted.
    pub fn spawn(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every.max(Duration::from_millis(50)));
            loop {
                ticker.tick().await;
                if let Err(error) = self.run_once().await {
                    tracing::warn!(%error, "webhook outbox pass failed");
                }
            }
        })
    }
}

/// The secrets that sign a message to `endpoint` at `now`: the current one, and the one
/// replaced by the last rotation while its grace period lasts.
fn signing_secrets(
    keyring: &Keyring,
    endpoint: &EndpointRow,
    now: i64,
) -> Result<Vec<String>, (Option<i64>, String)> {
    let aad = secret_aad(&endpoint.tenant_id, &endpoint.id);
    let open = |key_id: &str, ciphertext: &str| {
        let sealed = Sealed {
            key_id: key_id.to_owned(),
            ciphertext: ciphertext.to_owned(),
        };
        let secret = keyring
            .open(&sealed, &aad)
            .map_err(|e| (None, format!("cannot open endpoint secret: {e}")))?;
        String::from_utf8(secret).map_err(|_| (None, "endpoint secret is not UTF-8".to_owned()))
    };
    let mut secrets = vec![open(&endpoint.key_id, &endpoint.ciphertext)?];
    if let (Some(key_id), Some(ciphertext), Some(until)) = (
        &endpoint.previous_key_id,
        &endpoint.previous_ciphertext,
        endpoint.previous_expires_at,
    ) && until > now
    {
        secrets.push(open(key_id, ciphertext)?);
    }
    Ok(secrets)
}

/// The event type of a test message (`POST …/webhooks/{id}/test`); not subscribable.
pub const TEST_EVENT: &str = "webhook.test";

/// Queues a test message to one endpoint, whatever it subscribed to; returns its id.
pub async fn enqueue_test(
    conn: &mut AnyConnection,
    tenant_id: &str,
    endpoint_id: &str,
) -> Result<String, StoreError> {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let payload = json!({
        "type": TEST_EVENT,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": {"message": "a test event sent from the Switchboard API", "endpointId": endpoint_id},
    })
    .to_string();
    webhooks::enqueue(
        conn,
        &id,
        tenant_id,
        endpoint_id,
        TEST_EVENT,
        &payload,
        now_ms(),
    )
    .await?;
    Ok(id)
}

/// A fresh secret for an existing endpoint, sealed for it; returns the sealed form and the
/// secret, which is shown to the customer once.
pub fn new_sealed_secret(
    keyring: &Keyring,
    tenant_id: &str,
    endpoint_id: &str,
) -> Result<(Sealed, String), crate::crypto::CryptoError> {
    let secret = new_secret();
    let sealed = keyring.seal(secret.as_bytes(), &secret_aad(tenant_id, endpoint_id))?;
    Ok((sealed, secret))
}

/// Creates an endpoint with a fresh secret (sealed at rest); returns the row and the secret,
/// which is shown to the customer once.
pub fn new_endpoint(
    keyring: &Keyring,
    tenant_id: &str,
    url: &str,
    events: &str,
) -> Result<(EndpointRow, String), crate::crypto::CryptoError> {
    let id = new_id();
    let secret = new_secret();
    let sealed = keyring.seal(secret.as_bytes(), &secret_aad(tenant_id, &id))?;
    Ok((
        EndpointRow {
            id,
            tenant_id: tenant_id.to_owned(),
            url: url.to_owned(),
            events: events.to_owned(),
            key_id: sealed.key_id,
            ciphertext: sealed.ciphertext,
            created_at: now_ms(),
            disabled_at: None,
            previous_key_id: None,
            previous_ciphertext: None,
            previous_expires_at: None,
        },
        secret,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_signature_vector() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(0), 5_000);
        assert_eq!(backoff_ms(1), 10_000);
        assert_eq!(backoff_ms(30), 6 * 3_600_000);
    }
}
