//! The rules of `Idempotency-Key` (the header contract is `switchboard_crds::idempotency`; the
//! middleware that applies these rules is `http::idempotency`, the rows `store::idempotency`).
//!
//! * A key belongs to one tenant and one caller (user or API key): the same key sent by
//!   someone else, or to another tenant, is another key.
//! * A request is identified by its method, path (with query) and body. JSON bodies are
//!   compared in a canonical form (object keys sorted, no whitespace), so a client that
//!   re-serialises its retry differently still matches; other bodies byte for byte.
//! * Only successful answers (2xx) are remembered, for [`RETENTION_MS`]. An error answer had no
//!   effect (handlers are transactional), so the key is released and the same key may be sent
//!   again once the cause is fixed (a plan upgraded, a number released).
//! * A request holds its key for at most [`LEASE_MS`] while it runs; a second request with the
//!   key meanwhile is refused (409). If the gateway dies mid-request, the key is free again
//!   after the lease, so the retry runs again: effects that must survive such a crash derive
//!   their identity from the key ([`Idempotency::object_name`]; a number bought in Kubernetes
//!   mode is a `PhoneNumber` named this way, so a rerun applies the same object, not a second).
//! * Rows are pruned by a worker once expired ([`spawn_pruner`]).

use std::time::Duration;

use sha2::{Digest, Sha256};
use switchboard_crds::idempotency::RETENTION_HOURS;

use crate::store::idempotency::{self, KeyRef};
use crate::store::{Store, StoreError, now_ms, system};

/// How long an answer is remembered, in milliseconds.
pub const RETENTION_MS: i64 = RETENTION_HOURS * 3_600_000;

/// How long a running request holds its key (milliseconds); longer than any request runs.
pub const LEASE_MS: i64 = 120_000;

/// The largest answer body remembered (bytes). Creating answers are far smaller; a larger
/// one is answered but not remembered.
pub const STORED_BODY_MAX: usize = 4 * 1024 * 1024;

/// How often expired keys are pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(15 * 60);

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// A request's idempotency: whose key it is and which request it names. Handlers find it in
/// the request's extensions when the client sent a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The key's row.
    pub key: KeyRef,
    /// Hash of method, path and body.
    pub request_hash: String,
}

impl Idempotency {
    /// The idempotency of a request by `principal` (`user:<id>`/`api_key:<id>`) in a tenant.
    pub fn new(
        tenant_id: &str,
        principal: String,
        client_key: &str,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Self {
        Self {
            key: KeyRef {
                tenant_id: tenant_id.to_owned(),
                principal,
                key_hash: sha256_hex(&[client_key.as_bytes()]),
            },
            request_hash: request_hash(method, path_and_query, body),
        }
    }

    /// A Kubernetes object name (`{prefix}-` and 16 hex digits) that only this tenant, caller,
    /// key and request produce, so retrying the request (even after the 24 hours) applies the
    /// same object instead of creating a second.
    pub fn object_name(&self, prefix: &str) -> String {
        let digest = sha256_hex(&[
            self.key.tenant_id.as_bytes(),
            self.key.principal.as_bytes(),
            self.key.key_hash.as_bytes(),
            self.request_hash.as_bytes(),
        ]);
        format!("{prefix}-{}", &digest[..16])
    }

    /// Associated data binding a sealed answer to its key.
    pub fn aad(&self) -> String {
        answer_aad(&self.key.tenant_id, &self.key.principal, &self.key.key_hash)
    }
}

/// Associated data of a sealed answer stored under `(tenant_id, principal, key_hash)` (also
/// used by the re-encryption after a master-key rotation, `lifecycle::rekey`).
pub fn answer_aad(tenant_id: &str, principal: &str, key_hash: &str) -> String {
    format!("idempotent-answer:{tenant_id}:{principal}:{key_hash}")
}

/// Hash of a request: method, path with query, and the body (JSON canonicalised).
pub fn request_hash(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| serde_json::to_vec(&canonical_json(value)).ok());
    sha256_hex(&[
        method.as_bytes(),
        path_and_query.as_bytes(),
        canonical.as_deref().unwrap_or(body),
    ])
}

/// The same JSON with every object's keys sorted.
fn canonical_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical_json(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical_json).collect()),
        other => other,
    }
}

/// Whether an answer with this status is remembered: successes only.
pub fn remembers(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Deletes every expired key (all tenants). Returns how many.
pub async fn prune(store: &Store) -> Result<u64, StoreError> {
    let mut tx = system::write(store).await?;
    let pruned = idempotency::prune(&mut tx, now_ms()).await?;
    tx.commit().await?;
    Ok(pruned)
}

/// Prunes expired keys every [`PRUNE_EVERY`] until aborted.
pub fn spawn_pruner(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(PRUNE_EVERY);
        loop {
            ticker.tick().await;
            match prune(&store).await {
                Ok(0) => {}
                Ok(pruned) => tracing::debug!(pruned, "pruned expired idempotency keys"),
                Err(error) => tracing::warn!(%error, "cannot prune idempotency keys"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idem(principal: &str, key: &str, body: &str) -> Idempotency {
        Idempotency::new(
            "t1",
            principal.to_owned(),
            key,
            "POST",
            "/api/v1/tenants/acme/numbers",
            body.as_bytes(),
        )
    }

    #[test]
    fn json_bodies_compare_canonically_and_others_byte_for_byte() {
        let a = request_hash("POST", "/x", br#"{"a": 1, "b": {"d": 2, "c": 3}}"#);
        let b = request_hash("POST", "/x", br#"{"b":{"c":3,"d":2},"a":1}"#);
        assert_eq!(a, b);
        assert_ne!(
            a,
            request_hash("POST", "/x", br#"{"a": 2, "b": {"d": 2, "c": 3}}"#)
        );
        assert_ne!(
            a,
            request_hash("POST", "/y", br#"{"a": 1, "b": {"d": 2, "c": 3}}"#)
        );
        assert_ne!(
            request_hash("POST", "/x", b"phone\n+1555"),
            request_hash("POST", "/x", b"phone\n+1556")
        );
    }

    #[test]
    fn object_names_follow_key_caller_and_request() {
        let name = idem("user:u1", "k1", "{}").object_name("number");
        assert_eq!(name, idem("user:u1", "k1", "{ }").object_name("number"));
        assert!(name.starts_with("number-") && name.len() == "number-".len() + 16);
        assert_ne!(name, idem("user:u2", "k1", "{}").object_name("number"));
        assert_ne!(name, idem("user:u1", "k2", "{}").object_name("number"));
        assert_ne!(
            name,
            idem("user:u1", "k1", r#"{"areaCode":"415"}"#).object_name("number")
        );
        // The client's key is never stored as such.
        assert!(!idem("user:u1", "k1", "{}").key.key_hash.contains("k1"));
    }

    #[test]
    fn only_successes_are_remembered() {
        assert!(remembers(200) && remembers(201) && remembers(202));
        assert!(!remembers(403) && !remembers(409) && !remembers(422) && !remembers(503));
    }
}
