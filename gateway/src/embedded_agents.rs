//! Standalone mode's embedded runtime serves every tenant: each tenant's agents (default and
//! named), its numbers' agents and its stored provider credentials are read from the
//! database and handed to the runtime as one snapshot per tenant
//! (`switchboard_runtime::ConfigStore::set_tenants`), the same configuration the operator
//! and the `provider-keys` Secret give a tenant's runtime in Kubernetes mode.
//!
//! The snapshots are rebuilt every [`REFRESH`] (and on [`reload`]); a call takes its tenant's
//! snapshot when it starts. The data folder's file-based configuration stays the fallback:
//! a tenant whose default agent was never changed gets `agent/agent.json`, one without stored
//! keys gets `keys/`, and campaign scripts come from `agent/campaigns.json`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_crds::tenant::AgentSpec;
use switchboard_runtime::{AgentSnapshot, ConfigStore, ProviderKeys};
use tokio_util::sync::CancellationToken;

use crate::provider_keys::{load_decrypted, runtime_entries};
use crate::state::AppState;
use crate::store::{StoreError, numbers, system, tenants};

/// How often the tenants' configuration is re-read.
pub const REFRESH: Duration = Duration::from_secs(2);
/// Tenants read per page.
const PAGE: i64 = 500;

/// Every tenant's snapshot by slug. `shared` is the file-based configuration: its campaign
/// scripts are kept for every tenant.
pub async fn snapshots(
    state: &AppState,
    shared: &AgentSnapshot,
) -> Result<BTreeMap<String, AgentSnapshot>, StoreError> {
    let mut rows = Vec::new();
    let mut after = String::new();
    let mut tx = system::read(&state.store).await?;
    loop {
        let page = tenants::page(&mut tx, &after, PAGE).await?;
        let done = i64::try_from(page.len()).unwrap_or(i64::MAX) < PAGE;
        after = page.last().map(|t| t.id.clone()).unwrap_or_default();
        rows.extend(page);
        if done {
            break;
        }
    }
    let all_numbers = numbers::all(&mut tx).await?;
    tx.commit().await.map_err(StoreError::from)?;

    let mut snapshots = BTreeMap::new();
    for tenant in rows {
        let agent: AgentSpec = serde_json::from_str(&tenant.agent).unwrap_or_else(|error| {
            tracing::error!(%error, tenant = %tenant.slug, "stored default agent unreadable; using the builtin agent");
            AgentSpec::default()
        });
        let agents =
            switchboard_crds::agents::parse_named_agents(&tenant.agents).unwrap_or_else(|error| {
                tracing::error!(%error, tenant = %tenant.slug, "stored named agents unreadable");
                BTreeMap::new()
            });
        let numbers = switchboard_crds::agents::number_agents(
            all_numbers
                .iter()
                .filter(|n| n.tenant_id == tenant.id)
                .map(|n| (n.e164.as_str(), n.agent.as_deref())),
        );
        let credentials = load_decrypted(state, &tenant.id).await?;
        let entries = runtime_entries(&credentials);
        // A tenant that never changed its default agent, or stored no keys, keeps the data
        // folder's (`agent/agent.json`, `keys/`), as before tenants had their own.
        let agent = if agent == AgentSpec::default() {
            shared.agent.clone()
        } else {
            agent
        };
        let keys =
            if entries.is_empty() {
                shared.keys.clone()
            } else {
                ProviderKeys::from_credentials(entries.into_iter().map(|(entry, secret)| {
                    (entry, String::from_utf8_lossy(secret).trim().to_owned())
                }))
            };
        snapshots.insert(
            tenant.slug.clone(),
            AgentSnapshot {
                agent,
                agents,
                numbers,
                campaigns: shared.campaigns.clone(),
                keys,
            },
        );
    }
    Ok(snapshots)
}

/// Rebuilds every tenant's snapshot in `store` now.
pub async fn reload(state: &AppState, store: &ConfigStore) -> Result<(), StoreError> {
    let shared = store.snapshot();
    let snapshots = snapshots(state, &shared).await?;
    if store.set_tenants(snapshots) {
        tracing::debug!("tenants' agent configuration reloaded");
    }
    Ok(())
}

/// Rebuilds the snapshots every [`REFRESH`] until `cancel`; a failure keeps the last good ones.
pub fn spawn_refresh(
    state: AppState,
    store: Arc<ConfigStore>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(REFRESH);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            if let Err(error) = reload(&state, &store).await {
                tracing::warn!(%error, "tenants' agent configuration not reloaded");
            }
        }
    })
}
