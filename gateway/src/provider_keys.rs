//! Tenants' provider keys in their namespaces (Kubernetes mode): the `provider-keys` Secret
//! each runtime reads, written from the tenant's stored credentials ([`converge`]) after every
//! change and retried in the background ([`spawn_projection_retries`]) until it lands, e.g.
//! once the operator has created a new tenant's namespace. The `runtime-credential` Secret
//! (the tenant's runtime credential, [`crate::runtime_credential`]) is written with it: signup
//! and rotation mark the projection pending like a credential change does.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use switchboard_crds::credentials::{CredentialEntry, Vendor, secret_key};

use crate::crypto::{Sealed, credential_aad};
use crate::kube::{KubeError, desired_provider_secret, desired_runtime_credential_secret};
use crate::state::AppState;
use crate::store::credentials::{self, CredentialRow};
use crate::store::{Scope, StoreError, provider_keys, runtime_credentials, system, tenants};
use crate::tenant_carrier::desired_carrier_secret;

/// Every credential of a tenant with its decrypted secret (for the runtime's Secret). Rows that fail to decrypt are skipped
/// and logged (without contents).
pub async fn load_decrypted(
    state: &AppState,
    tenant_id: &str,
) -> Result<Vec<(CredentialRow, Vec<u8>)>, StoreError> {
    let mut tx = state.store.read(&Scope::tenant(tenant_id)).await?;
    let rows = credentials::list(&mut tx, tenant_id).await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let sealed = Sealed { key_id: row.key_id.clone(), ciphertext: row.ciphertext.clone() };
            match state.keyring.open(&sealed, &credential_aad(&row.tenant_id, &row.id)) {
                Ok(secret) => Some((row, secret)),
                Err(error) => {
                    tracing::error!(%error, credential_id = %row.id, "cannot decrypt a provider credential");
                    None
                }
            }
        })
        .collect())
}

/// The runtime's view of a tenant's provider credentials (`switchboard_crds::credentials`):
/// each STT/LLM/TTS credential as an index entry (its Secret key derived from vendor and
/// label, `openai-compatible` with the base URL it is bound to: metadata `base_url`) with its
/// secret. Carrier accounts are left out (they go to the operator, never to the runtime), and
/// so is a credential whose label makes too long a key (refused on creation; logged).
pub fn runtime_entries(credentials: &[(CredentialRow, Vec<u8>)]) -> Vec<(CredentialEntry, &[u8])> {
    credentials
        .iter()
        .filter_map(|(row, secret)| {
            let vendor = Vendor::parse(&row.provider)?;
            let Some(key) = secret_key(vendor, &row.label) else {
                tracing::warn!(credential_id = %row.id, "credential label too long for a Secret key; not delivered");
                return None;
            };
            let base_url = (vendor == Vendor::OpenaiCompatible)
                .then(|| {
                    serde_json::from_str::<std::collections::BTreeMap<String, String>>(&row.metadata)
                        .ok()?
                        .remove("base_url")
                })
                .flatten();
            Some((
                CredentialEntry {
                    vendor,
                    label: row.label.clone(),
                    is_default: row.is_default.0,
                    key,
                    base_url,
                },
                secret.as_slice(),
            ))
        })
        .collect()
}

/// Why the `provider-keys` Secret could not be brought up to date (logged; never holds a
/// secret: Kubernetes answers with a status message, the store with a driver error).
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// Reading the tenant or its credentials failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The API server refused the Secret (e.g. the namespace does not exist yet) or was
    /// unreachable.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The credentials changed during every attempt; the retry task takes over.
    #[error("the credentials kept changing while the Secret was written")]
    Churn,
}

/// How often one call of [`converge`] re-writes the Secret when credentials change under it.
const CONVERGE_ROUNDS: usize = 3;

/// Brings the tenant's `provider-keys` Secret up to its stored credentials in Kubernetes mode.
/// `Ok(true)`: written and recorded as projected; `Ok(false)`: nothing to do (Kubernetes off,
/// tenant gone).
///
/// Why the generation dance: several writers (handlers on several replicas, the retry task)
/// may write the same Secret, and the API server keeps whichever lands last. A writer reads
/// the generation, then the credentials, writes, and records the generation only if it is still
/// current. If it is not, its data may have landed after a newer writer's, so it marks the
/// Secret possibly stale and writes again with fresh data; after [`CONVERGE_ROUNDS`] it leaves
/// the tenant pending for [`spawn_projection_retries`].
pub async fn converge(state: &AppState, tenant_id: &str) -> Result<bool, ProjectionError> {
    if !state.kube.enabled() {
        return Ok(false);
    }
    let scope = Scope::tenant(tenant_id);
    for _ in 0..CONVERGE_ROUNDS {
        let mut tx = state.store.read(&scope).await?;
        let tenant = tenants::by_id(&mut tx, tenant_id).await?;
        let generation = provider_keys::state(&mut tx, tenant_id).await?;
        let epoch = runtime_credentials::epoch(&mut tx, tenant_id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let (Some(tenant), Some((generation, _)), Some(epoch)) = (tenant, generation, epoch) else {
            return Ok(false);
        };
        let credentials = load_decrypted(state, tenant_id).await?;
        let namespace = state.config.tenant_naming().namespace(&tenant.slug);
        let token = state.runtime_credentials.issue(tenant_id, epoch);
        state
            .kube
            .apply_secret(&desired_runtime_credential_secret(
                &namespace, &tenant, &token,
            ))
            .await?;
        state
            .kube
            .apply_provider_secret(&desired_provider_secret(
                &namespace,
                &tenant,
                &runtime_entries(&credentials),
            ))
            .await?;
        state
            .kube
            .apply_secret(&desired_carrier_secret(&namespace, &tenant, &credentials))
            .await?;
        let mut tx = state.store.write(&scope).await?;
        let current = provider_keys::mark_projected(&mut tx, tenant_id, generation).await?;
        if !current {
            provider_keys::mark_possibly_stale(&mut tx, tenant_id, generation).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        if current {
            return Ok(true);
        }
    }
    Err(ProjectionError::Churn)
}

/// Timing of [`spawn_projection_retries`].
#[derive(Debug, Clone, Copy)]
pub struct RetryTiming {
    /// How often the database is asked for pending tenants.
    pub poll: Duration,
    /// Wait after a tenant's first failure; doubles per failure.
    pub first_backoff: Duration,
    /// Longest wait between two attempts for one tenant.
    pub max_backoff: Duration,
}

impl Default for RetryTiming {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(5),
            first_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// Most pending tenants looked at per poll; more are paged through on the following polls.
const PENDING_BATCH: i64 = 500;

/// In Kubernetes mode, retries the `provider-keys` Secret of every pending tenant (for
/// example one whose namespace the operator had not created yet when its first credential
/// was saved) with per-tenant exponential backoff, until it is written. `None` without
/// Kubernetes. Several replicas may each retry the same tenant; [`converge`] keeps that safe.
pub fn spawn_projection_retries(
    state: &AppState,
    timing: RetryTiming,
) -> Option<tokio::task::JoinHandle<()>> {
    if !state.kube.enabled() {
        return None;
    }
    let state = state.clone();
    Some(tokio::spawn(async move {
        // Per tenant: failed attempts so far and when the next one is due.
        let mut backoff: HashMap<String, (u32, tokio::time::Instant)> = HashMap::new();
        // Pending tenants are paged by id, so a long list of tenants that keep failing cannot
        // starve the ones after them; `seen` collects one full pass to forget the others.
        let mut after = String::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut ticker = tokio::time::interval(timing.poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let page = match pending_page(&state, &after).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "cannot list tenants whose provider keys are pending");
                    continue;
                }
            };
            let full_pass = i64::try_from(page.len()).unwrap_or(i64::MAX) < PENDING_BATCH;
            after = if full_pass {
                String::new()
            } else {
                page.last().cloned().unwrap_or_default()
            };
            let now = tokio::time::Instant::now();
            for tenant_id in page {
                seen.insert(tenant_id.clone());
                if backoff.get(&tenant_id).is_some_and(|(_, due)| *due > now) {
                    continue;
                }
                match converge(&state, &tenant_id).await {
                    Ok(_) => {
                        if let Some((failures, _)) = backoff.remove(&tenant_id) {
                            tracing::info!(
                                tenant_id,
                                failures,
                                "provider keys projected into the tenant namespace"
                            );
                        }
                    }
                    Err(error) => {
                        let failures = backoff.get(&tenant_id).map_or(0, |(n, _)| *n) + 1;
                        let wait = timing
                            .first_backoff
                            .saturating_mul(2u32.saturating_pow(failures - 1))
                            .min(timing.max_backoff);
                        tracing::warn!(%error, tenant_id, failures, retry_in_secs = wait.as_secs_f64(), "provider keys still not projected");
                        backoff.insert(tenant_id, (failures, tokio::time::Instant::now() + wait));
                    }
                }
            }
            if full_pass {
                // Tenants no longer pending (written by a handler or another replica) are
                // forgotten once a whole pass did not list them.
                backoff.retain(|tenant, _| seen.contains(tenant));
                seen.clear();
            }
        }
    }))
}

/// The next page of pending tenants after `after` (a tenant id; empty = from the start).
async fn pending_page(state: &AppState, after: &str) -> Result<Vec<String>, StoreError> {
    let mut tx = system::read(&state.store).await?;
    let page = provider_keys::pending(&mut tx, after, PENDING_BATCH).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(page)
}
