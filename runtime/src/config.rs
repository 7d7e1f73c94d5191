//! Runtime configuration: process settings, and the tenant's agent + provider keys mounted
//! from a ConfigMap and a Secret, re-read when they change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use switchboard_crds::campaign::CampaignAgent;
use switchboard_crds::tenant::AgentSpec;
use tokio_util::sync::CancellationToken;

/// File of the agent ConfigMap holding `AgentSpec` JSON.
pub const AGENT_FILE: &str = "agent.json";
/// Optional file of the agent ConfigMap: JSON object of campaign name → `CampaignAgent`.
pub const CAMPAIGNS_FILE: &str = "campaigns.json";
/// Provider key files the runtime reads from the keys Secret.
pub const KEY_NAMES: [&str; 4] = [
    "OPENAI_API_KEY",
    "GROQ_API_KEY",
    "DEEPGRAM_API_KEY",
    "ELEVENLABS_API_KEY",
];

/// A secret string that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for building a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The tenant's provider API keys by name (`OPENAI_API_KEY`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderKeys(BTreeMap<String, Secret>);

impl ProviderKeys {
    /// Keys from `(name, value)` pairs (tests, embedding).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), Secret::new(v)))
                .collect(),
        )
    }

    /// The key called `name`, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(name).filter(|s| !s.0.is_empty())
    }
}

/// Everything a call needs from the tenant's configuration, as one consistent snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentSnapshot {
    /// The default agent.
    pub agent: AgentSpec,
    /// Survey scripts and overrides by campaign name.
    pub campaigns: BTreeMap<String, CampaignAgent>,
    /// The tenant's provider keys.
    pub keys: ProviderKeys,
}

/// Process-level settings of the runtime.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Tenant name (metric label, and the default tenant of events).
    pub tenant: String,
    /// Calls this process takes at once.
    pub max_concurrent_calls: usize,
    /// Where events are POSTed; `None` disables delivery (logged at debug level).
    pub events_url: Option<String>,
    /// Bearer token for the gateway's internal endpoints.
    pub internal_token: Option<Secret>,
    /// Time a provider may take to answer (first token / first audio / transcript).
    pub provider_timeout: Duration,
    /// A call with no inbound media for this long is ended.
    pub media_timeout: Duration,
    /// Time allowed between socket upgrade and the `start` message.
    pub start_timeout: Duration,
    /// Spoken when a provider fails.
    pub fallback_text: String,
    /// Let provider `baseUrl`s resolve to loopback, private, link-local and cluster addresses
    /// (`SWITCHBOARD_OUTBOUND_ALLOW_PRIVATE`; see `switchboard_crds::outbound`). Off: a tenant's
    /// agent cannot make the runtime call inside the cluster.
    pub outbound_allow_private: bool,
    /// Spoken before hanging up (maximum length, repeated failures).
    pub goodbye_text: String,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            tenant: "default".into(),
            max_concurrent_calls: 50,
            events_url: None,
            internal_token: None,
            provider_timeout: Duration::from_secs(8),
            media_timeout: Duration::from_secs(30),
            start_timeout: Duration::from_secs(10),
            fallback_text: "Sorry, I'm having trouble right now. Could you say that again?".into(),
            goodbye_text: "Thank you for calling. Goodbye.".into(),
            outbound_allow_private: false,
        }
    }
}

/// Errors while reading the mounted configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid JSON of the expected shape.
    #[error("invalid {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// Where the tenant's configuration is mounted.
#[derive(Clone, Debug)]
pub struct ConfigSource {
    /// The agent ConfigMap directory.
    pub agent_dir: PathBuf,
    /// The provider keys Secret directory.
    pub keys_dir: PathBuf,
}

impl ConfigSource {
    /// Reads agent, campaigns and keys. Missing files mean defaults (builtin providers, no keys).
    pub fn load(&self) -> Result<AgentSnapshot, ConfigError> {
        let agent = read_json::<AgentSpec>(&self.agent_dir.join(AGENT_FILE))?.unwrap_or_default();
        let campaigns = read_json(&self.agent_dir.join(CAMPAIGNS_FILE))?.unwrap_or_default();
        let keys = read_keys(&self.keys_dir)?;
        Ok(AgentSnapshot {
            agent,
            campaigns,
            keys,
        })
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, ConfigError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
}

fn read_keys(dir: &Path) -> Result<ProviderKeys, ConfigError> {
    let mut keys = BTreeMap::new();
    for name in KEY_NAMES {
        if let Some(value) = read_optional(&dir.join(name))? {
            keys.insert(name.to_owned(), Secret::new(value.trim()));
        }
    }
    Ok(ProviderKeys(keys))
}

/// The current snapshot, swapped atomically when the mounted files change.
///
/// Each call takes one snapshot when it starts, so a reload never changes a live call's agent
/// half-way through.
#[derive(Debug, Default)]
pub struct ConfigStore {
    current: RwLock<Arc<AgentSnapshot>>,
}

impl ConfigStore {
    /// A store holding `snapshot`.
    pub fn new(snapshot: AgentSnapshot) -> Self {
        Self {
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> Arc<AgentSnapshot> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the snapshot; returns true when it changed.
    pub fn replace(&self, snapshot: AgentSnapshot) -> bool {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if **guard == snapshot {
            return false;
        }
        *guard = Arc::new(snapshot);
        true
    }

    /// Re-reads `source` every `interval` until `cancel`. Kubernetes updates mounted
    /// ConfigMaps and Secrets by swapping a symlink, so comparing content (cheap: a few small
    /// files) is more reliable than watching inotify events or mtimes.
    pub fn spawn_reloader(
        self: Arc<Self>,
        source: ConfigSource,
        interval: Duration,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let source = source.clone();
                match tokio::task::spawn_blocking(move || source.load()).await {
                    Ok(Ok(snapshot)) => {
                        if self.replace(snapshot) {
                            tracing::info!("agent configuration reloaded");
                        }
                    }
                    // Keep serving with the last good configuration.
                    Ok(Err(error)) => tracing::error!(%error, "agent configuration not reloaded"),
                    Err(error) => tracing::error!(%error, "configuration reload task failed"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_agent_and_keys_and_hides_keys_from_debug() {
        let agent_dir = tempfile::tempdir().unwrap();
        let keys_dir = tempfile::tempdir().unwrap();
        std::fs::write(
            agent_dir.path().join(AGENT_FILE),
            r#"{"greeting":"Hi there","llm":{"provider":"groq","model":"m"},"endOfTurnSilenceMs":500}"#,
        )
        .unwrap();
        std::fs::write(keys_dir.path().join("GROQ_API_KEY"), "gsk-secret\n").unwrap();
        let source = ConfigSource {
            agent_dir: agent_dir.path().into(),
            keys_dir: keys_dir.path().into(),
        };
        let snapshot = source.load().unwrap();
        assert_eq!(snapshot.agent.greeting, "Hi there");
        assert_eq!(snapshot.agent.end_of_turn_silence_ms, 500);
        assert_eq!(
            snapshot.keys.get("GROQ_API_KEY").map(Secret::expose),
            Some("gsk-secret")
        );
        assert!(!format!("{snapshot:?}").contains("gsk-secret"));
    }

    #[tokio::test]
    async fn reloader_picks_up_changes_and_keeps_last_good_on_errors() {
        let agent_dir = tempfile::tempdir().unwrap();
        let keys_dir = tempfile::tempdir().unwrap();
        let source = ConfigSource {
            agent_dir: agent_dir.path().into(),
            keys_dir: keys_dir.path().into(),
        };
        let store = Arc::new(ConfigStore::new(source.load().unwrap()));
        let cancel = CancellationToken::new();
        let task = store
            .clone()
            .spawn_reloader(source, Duration::from_millis(20), cancel.clone());
        std::fs::write(agent_dir.path().join(AGENT_FILE), r#"{"greeting":"New"}"#).unwrap();
        let mut changed = false;
        for _ in 0..100 {
            if store.snapshot().agent.greeting == "New" {
                changed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(changed);
        std::fs::write(agent_dir.path().join(AGENT_FILE), "{broken").unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(store.snapshot().agent.greeting, "New");
        cancel.cancel();
        task.await.unwrap();
    }
}
