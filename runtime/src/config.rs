//! Runtime configuration: process settings, and the tenant's agent + provider keys mounted
//! from a ConfigMap and a Secret, re-read when they change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use switchboard_crds::agents::{CallFacts, NamedAgents};
use switchboard_crds::campaign::CampaignAgent;
use switchboard_crds::credentials::{self, CredentialEntry, Vendor};
use switchboard_crds::tenant::AgentSpec;
use tokio_util::sync::CancellationToken;

pub use switchboard_crds::agents::{AGENT_FILE, AGENTS_FILE, CAMPAIGNS_FILE, NUMBERS_FILE};

/// Well-known provider key files the runtime reads from the keys Secret besides the index
/// (`credentials.json`): each is its vendor's default credential when the index names none
/// (a Secret written by hand, `Tenant.spec.providerSecretRef`).
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

/// The tenant's provider credentials: secrets by Secret key (the well-known names such as
/// `OPENAI_API_KEY`, and `<vendor>.<label>` keys) plus the index describing the stored
/// credentials (`switchboard_crds::credentials`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderKeys {
    secrets: BTreeMap<String, Secret>,
    index: Vec<CredentialEntry>,
}

/// The credential a stage resolved to: its secret, and for `openai-compatible` the base URL
/// it is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageCredential {
    /// The secret.
    pub secret: Secret,
    /// The only base URL this secret may be sent to (`openai-compatible`).
    pub base_url: Option<String>,
}

impl ProviderKeys {
    /// Keys from `(name, value)` pairs (tests, embedding).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            secrets: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), Secret::new(v)))
                .collect(),
            index: Vec::new(),
        }
    }

    /// Keys from stored credentials with their secrets (the standalone gateway; the same
    /// layout as the `provider-keys` Secret).
    pub fn from_credentials(
        credentials: impl IntoIterator<Item = (CredentialEntry, String)>,
    ) -> Self {
        let mut keys = Self::default();
        for (entry, secret) in credentials {
            keys.secrets.insert(entry.key.clone(), Secret::new(secret));
            keys.index.push(entry);
        }
        keys
    }

    /// The key called `name`, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.secrets.get(name).filter(|s| !s.0.is_empty())
    }

    /// The stored credentials (no secrets).
    pub fn index(&self) -> &[CredentialEntry] {
        &self.index
    }

    /// The credential of `vendor` a stage uses: the one labelled `label`, else the vendor's
    /// default (from the index, else its well-known key). `None` when there is none.
    pub fn for_stage(&self, vendor: Vendor, label: Option<&str>) -> Option<StageCredential> {
        if let Some(entry) = credentials::select(&self.index, vendor, label) {
            return Some(StageCredential {
                secret: self.get(&entry.key)?.clone(),
                base_url: entry.base_url.clone(),
            });
        }
        if label.is_some() {
            return None;
        }
        let well_known = vendor.well_known_key()?;
        Some(StageCredential {
            secret: self.get(well_known)?.clone(),
            base_url: None,
        })
    }
}

/// Everything a call needs from the tenant's configuration, as one consistent snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentSnapshot {
    /// The default agent (for a call's snapshot: the agent picked for the call).
    pub agent: AgentSpec,
    /// Named agents.
    pub agents: NamedAgents,
    /// The tenant's numbers (E.164) that name an agent.
    pub numbers: BTreeMap<String, String>,
    /// Survey scripts and overrides by campaign name.
    pub campaigns: BTreeMap<String, CampaignAgent>,
    /// The tenant's provider keys.
    pub keys: ProviderKeys,
}

impl AgentSnapshot {
    /// The snapshot one call runs with: `agent` is the agent that answers it (its campaign's
    /// agent, else its number's, else the default; `switchboard_crds::agents::pick`), with
    /// its name, and only the call's campaign is kept. A test call's `agent` comes first.
    pub fn for_call(
        &self,
        from: Option<&str>,
        to: Option<&str>,
        campaign: Option<&str>,
        agent: Option<&str>,
    ) -> (String, AgentSnapshot) {
        let script = campaign.and_then(|name| self.campaigns.get_key_value(name));
        let facts = CallFacts {
            from,
            to,
            campaign: campaign.is_some(),
            campaign_agent: script.and_then(|(_, s)| s.name.as_deref()),
            agent,
        };
        let (name, agent) =
            switchboard_crds::agents::pick(&self.agent, &self.agents, &self.numbers, facts);
        let snapshot = AgentSnapshot {
            agent: agent.clone(),
            agents: NamedAgents::new(),
            numbers: BTreeMap::new(),
            campaigns: script
                .map(|(name, script)| (name.clone(), script.clone()))
                .into_iter()
                .collect(),
            keys: self.keys.clone(),
        };
        (name.to_owned(), snapshot)
    }
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
    /// Reads the default agent, named agents, number → agent map, campaigns and keys.
    /// Missing files mean defaults (builtin providers, no named agents, no keys).
    pub fn load(&self) -> Result<AgentSnapshot, ConfigError> {
        let agent = read_json::<AgentSpec>(&self.agent_dir.join(AGENT_FILE))?.unwrap_or_default();
        let agents = read_json(&self.agent_dir.join(AGENTS_FILE))?.unwrap_or_default();
        let numbers = read_json(&self.agent_dir.join(NUMBERS_FILE))?.unwrap_or_default();
        let campaigns = read_json(&self.agent_dir.join(CAMPAIGNS_FILE))?.unwrap_or_default();
        let keys = read_keys(&self.keys_dir)?;
        Ok(AgentSnapshot {
            agent,
            agents,
            numbers,
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

/// A Secret key the runtime will open as a file: the characters Kubernetes allows, not `.`
/// or `..` (the index is data; it must not name a path elsewhere).
fn is_key_file_name(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

fn read_keys(dir: &Path) -> Result<ProviderKeys, ConfigError> {
    let mut keys = ProviderKeys::default();
    for name in KEY_NAMES {
        if let Some(value) = read_optional(&dir.join(name))? {
            keys.secrets
                .insert(name.to_owned(), Secret::new(value.trim()));
        }
    }
    let index: Vec<CredentialEntry> =
        read_json(&dir.join(credentials::INDEX_KEY))?.unwrap_or_default();
    for entry in index {
        if !is_key_file_name(&entry.key) {
            tracing::warn!(key = %entry.key, "credential index names an invalid key; skipped");
            continue;
        }
        if let Some(value) = read_optional(&dir.join(&entry.key))? {
            keys.secrets
                .insert(entry.key.clone(), Secret::new(value.trim()));
            keys.index.push(entry);
        }
    }
    Ok(keys)
}

/// The current snapshot, swapped atomically when the mounted files change.
///
/// Each call takes one snapshot when it starts, so a reload never changes a live call's agent
/// half-way through.
#[derive(Debug, Default)]
pub struct ConfigStore {
    current: RwLock<Arc<AgentSnapshot>>,
    tenants: RwLock<BTreeMap<String, Arc<AgentSnapshot>>>,
}

impl ConfigStore {
    /// A store holding `snapshot`.
    pub fn new(snapshot: AgentSnapshot) -> Self {
        Self {
            current: RwLock::new(Arc::new(snapshot)),
            tenants: RwLock::default(),
        }
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> Arc<AgentSnapshot> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The snapshot of `tenant` when this runtime serves several tenants (standalone: the
    /// gateway sets one per tenant with [`ConfigStore::set_tenants`]); otherwise, and for a
    /// tenant without one, the snapshot in force.
    pub fn snapshot_for(&self, tenant: Option<&str>) -> Arc<AgentSnapshot> {
        let tenants = match self.tenants.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match tenant.and_then(|t| tenants.get(t)) {
            Some(snapshot) => snapshot.clone(),
            None => self.snapshot(),
        }
    }

    /// Replaces every tenant's snapshot (tenant name → snapshot); returns true when any
    /// changed. Live calls keep the snapshot they started with.
    pub fn set_tenants(&self, snapshots: BTreeMap<String, AgentSnapshot>) -> bool {
        let mut tenants = match self.tenants.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let same = tenants.len() == snapshots.len()
            && snapshots
                .iter()
                .all(|(name, s)| tenants.get(name).is_some_and(|t| **t == *s));
        if same {
            return false;
        }
        *tenants = snapshots
            .into_iter()
            .map(|(name, s)| (name, Arc::new(s)))
            .collect();
        true
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

    #[test]
    fn loads_named_agents_numbers_and_indexed_credentials() {
        let agent_dir = tempfile::tempdir().unwrap();
        let keys_dir = tempfile::tempdir().unwrap();
        let write = |dir: &tempfile::TempDir, name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).unwrap();
        };
        write(&agent_dir, AGENT_FILE, r#"{"greeting":"Default"}"#);
        write(
            &agent_dir,
            AGENTS_FILE,
            r#"{"sales":{"greeting":"Sales","llm":{"provider":"openai","credential":"backup"}}}"#,
        );
        write(&agent_dir, NUMBERS_FILE, r#"{"+15550100":"sales"}"#);
        write(
            &agent_dir,
            CAMPAIGNS_FILE,
            r#"{"spring":{"name":"sales","questions":[]}}"#,
        );
        write(&keys_dir, "OPENAI_API_KEY", "sk-legacy");
        write(&keys_dir, "openai.backup", "sk-backup\n");
        write(&keys_dir, "secret-elsewhere", "x");
        write(
            &keys_dir,
            credentials::INDEX_KEY,
            r#"[{"vendor":"openai","label":"backup","isDefault":false,"key":"openai.backup"},
                {"vendor":"openai","label":"bad","key":"../secret-elsewhere"}]"#,
        );
        let source = ConfigSource {
            agent_dir: agent_dir.path().into(),
            keys_dir: keys_dir.path().into(),
        };
        let snapshot = source.load().unwrap();
        assert_eq!(
            snapshot.keys.index().len(),
            1,
            "a path in the index is skipped"
        );
        let stage = |label| {
            snapshot
                .keys
                .for_stage(Vendor::Openai, label)
                .map(|c| c.secret)
        };
        assert_eq!(stage(Some("backup")), Some(Secret::new("sk-backup")));
        assert_eq!(
            stage(None),
            Some(Secret::new("sk-legacy")),
            "well-known default"
        );
        assert_eq!(stage(Some("bad")), None);

        let (name, call) = snapshot.for_call(Some("+4930"), Some("+15550100"), None, None);
        assert_eq!(
            (name.as_str(), call.agent.greeting.as_str()),
            ("sales", "Sales")
        );
        assert_eq!(call.agent.llm.credential.as_deref(), Some("backup"));
        let (name, call) = snapshot.for_call(Some("+4930"), Some("+15550199"), None, None);
        assert_eq!(
            (name.as_str(), call.agent.greeting.as_str()),
            ("default", "Default")
        );
        let (name, call) =
            snapshot.for_call(Some("+15550199"), Some("+4930"), Some("spring"), None);
        assert_eq!(name, "sales", "the campaign names its agent");
        assert_eq!(call.campaigns.len(), 1);
    }

    #[test]
    fn a_runtime_serving_several_tenants_gives_each_its_own_snapshot() {
        let store = ConfigStore::new(AgentSnapshot::default());
        let tenant = |greeting: &str| AgentSnapshot {
            agent: AgentSpec {
                greeting: greeting.into(),
                ..AgentSpec::default()
            },
            ..AgentSnapshot::default()
        };
        assert!(store.set_tenants(BTreeMap::from([
            ("acme".to_owned(), tenant("Acme")),
            ("globex".to_owned(), tenant("Globex")),
        ])));
        assert_eq!(store.snapshot_for(Some("acme")).agent.greeting, "Acme");
        assert_eq!(store.snapshot_for(Some("globex")).agent.greeting, "Globex");
        assert_eq!(
            store.snapshot_for(Some("other")).agent.greeting,
            AgentSpec::default().greeting
        );
        assert!(!store.set_tenants(BTreeMap::from([
            ("acme".to_owned(), tenant("Acme")),
            ("globex".to_owned(), tenant("Globex")),
        ])));
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
