//! Configuration from flags and environment variables (12-factor).

use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine;
use clap::{ArgAction, Args};

use crate::voice_config::presence;

/// The default embedded database: a SQLite file next to the process, created on start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://switchboard.db?mode=rwc";

/// Shortest accepted `JWT_SECRET` outside dev mode, in bytes (HS256 wants at least 256 bits).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Every setting of the gateway. Each flag also reads the environment variable named next to it.
/// `Debug` is written by hand and prints no secret (keys, tokens, or credentials in URLs).
#[derive(Args, Clone)]
pub struct Config {
    /// Address of the public API, webhooks, media entry, internal API, `/healthz` and `/readyz`.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Address of `/metrics` (and `/healthz`, `/readyz`): a port of its own, never the public
    /// one, because the metrics name every tenant.
    #[arg(
        long,
        env = "SWITCHBOARD_METRICS_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_listen: SocketAddr,

    /// Database URL: `postgres://…` (production) or `sqlite://file?mode=rwc` (embedded default).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,

    /// Largest number of pooled database connections.
    #[arg(
        long,
        env = "SWITCHBOARD_DATABASE_MAX_CONNECTIONS",
        default_value_t = 10
    )]
    pub database_max_connections: u32,

    /// Run pending migrations when the server starts (`migrate` runs them alone).
    #[arg(long, env = "SWITCHBOARD_MIGRATE_ON_START", default_value_t = true, action = ArgAction::Set)]
    pub migrate_on_start: bool,

    /// Secret signing access tokens (HS256), at least 32 bytes.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Former JWT secrets still accepted for verification during a rotation (comma-separated).
    #[arg(
        long,
        env = "JWT_PREVIOUS_SECRETS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub jwt_previous_secrets: Vec<String>,

    /// Master key encrypting provider credentials: 32 bytes as hex or base64.
    #[arg(long, env = "MASTER_ENCRYPTION_KEY", hide_env_values = true)]
    pub master_encryption_key: Option<String>,

    /// Former master keys still able to decrypt during a rotation (comma-separated).
    #[arg(
        long,
        env = "MASTER_ENCRYPTION_PREVIOUS_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub master_encryption_previous_keys: Vec<String>,

    /// Write `Tenant` CRs and provider-key Secrets to Kubernetes. `false` runs standalone.
    #[arg(long, env = "SWITCHBOARD_KUBERNETES", default_value_t = true, action = ArgAction::Set)]
    pub kubernetes: bool,

    /// Redis URL for rate limits shared by several replicas (in memory when unset).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Development mode: generates missing secrets at start (tokens and credentials do not
    /// survive a restart). Never in production.
    #[arg(long, env = "SWITCHBOARD_DEV_MODE", default_value_t = false, action = ArgAction::Set)]
    pub dev_mode: bool,

    /// Public base URL of the gateway, used in e-mailed links and as the JWT issuer.
    #[arg(
        long,
        env = "SWITCHBOARD_PUBLIC_URL",
        default_value = "http://localhost:8080"
    )]
    pub public_url: String,

    /// Origins allowed by CORS (comma-separated). Empty: no cross-origin access.
    #[arg(long, env = "SWITCHBOARD_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,

    /// Requests per minute allowed from one client IP address.
    #[arg(
        long,
        env = "SWITCHBOARD_RATE_LIMIT_IP_PER_MINUTE",
        default_value_t = 600
    )]
    pub rate_limit_ip_per_minute: u32,

    /// Requests per minute allowed for one API key.
    #[arg(
        long,
        env = "SWITCHBOARD_RATE_LIMIT_API_KEY_PER_MINUTE",
        default_value_t = 1200
    )]
    pub rate_limit_api_key_per_minute: u32,

    /// Login attempts per minute for one e-mail address (throttles password guessing).
    #[arg(
        long,
        env = "SWITCHBOARD_RATE_LIMIT_LOGIN_PER_MINUTE",
        default_value_t = 10
    )]
    pub rate_limit_login_per_minute: u32,

    /// Failed CDR basic-auth attempts per minute against one tenant; past it, the tenant's CDR
    /// endpoint answers 429 before checking credentials until the budget refills.
    #[arg(
        long,
        env = "SWITCHBOARD_RATE_LIMIT_CDR_AUTH_FAILURES_PER_MINUTE",
        default_value_t = 10
    )]
    pub rate_limit_cdr_auth_failures_per_minute: u32,

    /// Seconds a tenant's CDR credential (user name and password hash) is kept in memory
    /// after it was read, so a PBX posting record after record is not checked against the
    /// database each time; a rotation on this replica takes effect at once. 0: no cache.
    #[arg(
        long,
        env = "SWITCHBOARD_CDR_CREDENTIAL_CACHE_SECS",
        default_value_t = 5
    )]
    pub cdr_credential_cache_secs: u64,

    /// Take the client IP from the first `X-Forwarded-For` entry (only behind a trusted proxy).
    #[arg(long, env = "SWITCHBOARD_TRUST_FORWARDED_FOR", default_value_t = false, action = ArgAction::Set)]
    pub trust_forwarded_for: bool,

    /// Largest accepted request body in bytes.
    #[arg(long, env = "SWITCHBOARD_BODY_LIMIT_BYTES", default_value_t = 256 * 1024)]
    pub body_limit_bytes: usize,

    /// Let tenant-chosen URLs (customer webhooks, agent `baseUrl`) name loopback, private,
    /// link-local and cluster addresses. Off in production (SSRF); for development with local
    /// stand-ins. See `switchboard_crds::outbound`.
    #[arg(long, env = "SWITCHBOARD_OUTBOUND_ALLOW_PRIVATE", default_value_t = false, action = ArgAction::Set)]
    pub outbound_allow_private: bool,

    /// Seconds a client may take to send a request's headers; the connection is closed after.
    #[arg(
        long,
        env = "SWITCHBOARD_HEADER_READ_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub header_read_timeout_secs: u64,

    /// Seconds a request body may stall between chunks before the request is answered 408.
    #[arg(long, env = "SWITCHBOARD_BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub body_read_timeout_secs: u64,

    /// Lifetime of access tokens in seconds.
    #[arg(
        long,
        env = "SWITCHBOARD_ACCESS_TOKEN_TTL_SECONDS",
        default_value_t = 900
    )]
    pub access_token_ttl_seconds: i64,

    /// Lifetime of a login session (its refresh tokens) in seconds.
    #[arg(long, env = "SWITCHBOARD_SESSION_TTL_SECONDS", default_value_t = 30 * 24 * 3600)]
    pub session_ttl_seconds: i64,

    /// Folder where the standalone mailer writes outgoing e-mail (one JSON file each).
    #[arg(long, env = "SWITCHBOARD_MAIL_OUTBOX", default_value = "mail-outbox")]
    pub mail_outbox: PathBuf,

    /// Folder for call recordings of tenants without an `s3` credential (outside Kubernetes
    /// mode only; standalone sets `<data-dir>/recordings`). Unset: such tenants cannot record.
    #[arg(long, env = "SWITCHBOARD_RECORDINGS_DIR")]
    pub recordings_dir: Option<PathBuf>,

    /// Prefix of tenant namespaces: tenant `acme` lives in `{prefix}acme`. The operator's
    /// setting of the same name; both must see the same value (the Helm chart sets both).
    #[arg(
        long,
        env = "SWITCHBOARD_NAMESPACE_PREFIX",
        default_value = switchboard_crds::naming::DEFAULT_NAMESPACE_PREFIX
    )]
    pub namespace_prefix: String,

    /// Seconds the gateway keeps proxying live calls after SIGTERM before it exits (see
    /// `drain`). Keep it below the pod's `terminationGracePeriodSeconds`; the Helm chart
    /// sets it to that period minus 30 s.
    #[arg(long, env = "SWITCHBOARD_DRAIN_SECONDS", default_value_t = 570)]
    pub drain_seconds: u64,

    /// Carrier, media, internal-API, billing, plan-limit and dialer settings.
    #[command(flatten)]
    pub voice: crate::voice_config::VoiceConfig,

    /// Retention, deletion grace period, platform admins (issue 19).
    #[command(flatten)]
    pub lifecycle: LifecycleConfig,

    /// SMTP relay for outgoing e-mail: `smtps://user:password@host:465` (TLS),
    /// `smtp://user:password@host:587?tls=required` (STARTTLS). Unset: the outbox folder.
    /// Its `Debug` masks the password.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<crate::mailer::SmtpUrl>,

    /// Sender of outgoing e-mail, `no-reply@example.com` or `Name <no-reply@example.com>`;
    /// required with `SMTP_URL`.
    #[arg(long, env = "MAIL_FROM")]
    pub mail_from: Option<String>,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required secret is missing and dev mode is off.
    #[error("{0} is required (or set SWITCHBOARD_DEV_MODE=true to generate a throwaway one)")]
    Missing(&'static str),
    /// `JWT_SECRET` is too short.
    #[error("JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes (got {0})")]
    WeakJwtSecret(usize),
    /// A master key is not 32 bytes of hex or base64.
    #[error("{0} must be 32 bytes encoded as hex (64 characters) or base64")]
    BadMasterKey(&'static str),
}

/// A connection URL without its user-info (which may hold a password).
pub(crate) fn without_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://<credentials>@{host}"),
        _ => url.to_owned(),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("database_url", &without_credentials(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("jwt_secret", &presence(&self.jwt_secret))
            .field("jwt_previous_secrets", &self.jwt_previous_secrets.len())
            .field(
                "master_encryption_key",
                &presence(&self.master_encryption_key),
            )
            .field(
                "master_encryption_previous_keys",
                &self.master_encryption_previous_keys.len(),
            )
            .field("kubernetes", &self.kubernetes)
            .field("namespace_prefix", &self.namespace_prefix)
            .field("drain_seconds", &self.drain_seconds)
            .field(
                "redis_url",
                &self.redis_url.as_deref().map(without_credentials),
            )
            .field("dev_mode", &self.dev_mode)
            .field("public_url", &self.public_url)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("rate_limit_ip_per_minute", &self.rate_limit_ip_per_minute)
            .field(
                "rate_limit_api_key_per_minute",
                &self.rate_limit_api_key_per_minute,
            )
            .field(
                "rate_limit_login_per_minute",
                &self.rate_limit_login_per_minute,
            )
            .field(
                "rate_limit_cdr_auth_failures_per_minute",
                &self.rate_limit_cdr_auth_failures_per_minute,
            )
            .field("cdr_credential_cache_secs", &self.cdr_credential_cache_secs)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("access_token_ttl_seconds", &self.access_token_ttl_seconds)
            .field("session_ttl_seconds", &self.session_ttl_seconds)
            .field("mail_outbox", &self.mail_outbox)
            .field("recordings_dir", &self.recordings_dir)
            .field("voice", &self.voice)
            .field("lifecycle", &self.lifecycle)
            .field("smtp_url", &self.smtp_url)
            .field("mail_from", &self.mail_from)
            .finish()
    }
}

/// Secrets resolved from the configuration (generated in dev mode when missing).
pub struct Secrets {
    /// Current JWT signing secret.
    pub jwt_secret: Vec<u8>,
    /// Former JWT secrets still accepted.
    pub jwt_previous: Vec<Vec<u8>>,
    /// Current master encryption key.
    pub master_key: [u8; 32],
    /// Former master keys still able to decrypt.
    pub master_previous: Vec<[u8; 32]>,
}

impl Config {
    /// Checks the secrets and decodes them. In dev mode, missing secrets are generated and a
    /// loud warning is logged; weak secrets are accepted there (with a warning) too.
    pub fn resolve_secrets(&self) -> Result<Secrets, ConfigError> {
        let jwt_secret = match &self.jwt_secret {
            Some(secret) if secret.len() >= MIN_JWT_SECRET_BYTES => secret.as_bytes().to_vec(),
            Some(secret) if self.dev_mode => {
                tracing::warn!(
                    "DEV MODE: accepting a JWT_SECRET shorter than {MIN_JWT_SECRET_BYTES} bytes"
                );
                secret.as_bytes().to_vec()
            }
            Some(secret) => return Err(ConfigError::WeakJwtSecret(secret.len())),
            None if self.dev_mode => {
                tracing::warn!(
                    "DEV MODE: generated a random JWT_SECRET; every token dies on restart. NEVER USE THIS IN PRODUCTION"
                );
                random_bytes::<32>().to_vec()
            }
            None => return Err(ConfigError::Missing("JWT_SECRET")),
        };
        let master_key = match &self.master_encryption_key {
            Some(key) => decode_master_key(key, "MASTER_ENCRYPTION_KEY")?,
            None if self.dev_mode => {
                tracing::warn!(
                    "DEV MODE: generated a random MASTER_ENCRYPTION_KEY; stored provider credentials become unreadable on restart. NEVER USE THIS IN PRODUCTION"
                );
                random_bytes::<32>()
            }
            None => return Err(ConfigError::Missing("MASTER_ENCRYPTION_KEY")),
        };
        let master_previous = self
            .master_encryption_previous_keys
            .iter()
            .filter(|k| !k.trim().is_empty())
            .map(|k| decode_master_key(k, "MASTER_ENCRYPTION_PREVIOUS_KEYS"))
            .collect::<Result<_, _>>()?;
        let jwt_previous = self
            .jwt_previous_secrets
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        Ok(Secrets {
            jwt_secret,
            jwt_previous,
            master_key,
            master_previous,
        })
    }

    /// The public URL without a trailing slash.
    pub fn public_base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    /// The e-mail settings.
    pub fn mail(&self) -> crate::mailer::MailSettings {
        crate::mailer::MailSettings {
            smtp_url: self.smtp_url.clone(),
            mail_from: self.mail_from.clone(),
            outbox: self.mail_outbox.clone(),
            public_url: self.public_url.clone(),
        }
    }

    /// Where tenants' stacks live: namespaces and runtime endpoints from
    /// `SWITCHBOARD_NAMESPACE_PREFIX`, computed as the operator computes them.
    pub fn tenant_naming(&self) -> switchboard_crds::naming::TenantNaming {
        switchboard_crds::naming::TenantNaming::new(self.namespace_prefix.clone())
    }
}

/// Decodes a 32-byte key given as 64 hex characters or as (standard or URL-safe) base64.
pub fn decode_master_key(text: &str, name: &'static str) -> Result<[u8; 32], ConfigError> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
            .ok()
    };
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or(ConfigError::BadMasterKey(name))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes);
    bytes
}

/// Retention, deletion and platform-admin settings (flattened into [`crate::Config`]).
#[derive(Args, Clone, Debug)]
pub struct LifecycleConfig {
    /// E-mail addresses of the platform admins (comma-separated). A listed person, signed in
    /// with a verified address, reaches `/api/v1/admin/…`; the role is no tenant role.
    #[arg(long, env = "SWITCHBOARD_PLATFORM_ADMINS", value_delimiter = ',')]
    pub platform_admins: Vec<String>,

    /// Hours a deleted tenant can be restored before its data is removed.
    #[arg(long, env = "SWITCHBOARD_DELETION_GRACE_HOURS", default_value_t = switchboard_crds::retention::DEFAULT_DELETION_GRACE_HOURS)]
    pub deletion_grace_hours: u64,

    /// Seconds between two passes of the data-lifecycle worker (purges, retention, re-encryption).
    #[arg(
        long,
        env = "SWITCHBOARD_LIFECYCLE_INTERVAL_SECONDS",
        default_value_t = 3600
    )]
    pub lifecycle_interval_seconds: u64,

    /// Run the data-lifecycle worker in this process (one replica is enough; every pass is
    /// idempotent, so several are harmless).
    #[arg(long, env = "SWITCHBOARD_LIFECYCLE_WORKER", default_value_t = true, action = ArgAction::Set)]
    pub lifecycle_worker: bool,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            platform_admins: Vec::new(),
            deletion_grace_hours: switchboard_crds::retention::DEFAULT_DELETION_GRACE_HOURS,
            lifecycle_interval_seconds: 3600,
            lifecycle_worker: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Config {
        let mut all = vec!["gateway"];
        all.extend_from_slice(args);
        Wrapper::try_parse_from(all).unwrap().config
    }

    #[test]
    fn short_jwt_secret_is_refused_outside_dev_mode() {
        let key = "00".repeat(32);
        let config = parse(&["--jwt-secret", "short", "--master-encryption-key", &key]);
        assert!(matches!(
            config.resolve_secrets(),
            Err(ConfigError::WeakJwtSecret(5))
        ));
        let dev = parse(&[
            "--jwt-secret",
            "short",
            "--master-encryption-key",
            &key,
            "--dev-mode",
            "true",
        ]);
        assert!(dev.resolve_secrets().is_ok());
    }

    #[test]
    fn missing_secrets_are_generated_only_in_dev_mode() {
        assert!(matches!(
            parse(&[]).resolve_secrets(),
            Err(ConfigError::Missing("JWT_SECRET"))
        ));
        let secrets = parse(&["--dev-mode", "true"]).resolve_secrets().unwrap();
        assert_eq!(secrets.jwt_secret.len(), 32);
    }

    #[test]
    fn master_keys_decode_from_hex_and_base64() {
        let raw = [7u8; 32];
        let hex_key = hex::encode(raw);
        let b64_key = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(decode_master_key(&hex_key, "k").unwrap(), raw);
        assert_eq!(decode_master_key(&b64_key, "k").unwrap(), raw);
        assert!(decode_master_key("abcd", "k").is_err());
        assert!(decode_master_key(&hex::encode([1u8; 16]), "k").is_err());
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = parse(&[]);
        assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(config.metrics_listen.to_string(), "0.0.0.0:9090");
        assert!(config.kubernetes);
        let standalone = parse(&["--kubernetes", "false"]);
        assert!(!standalone.kubernetes);
    }

    #[test]
    fn debug_output_names_no_secret() {
        let config = Wrapper::try_parse_from([
            "gateway",
            "--database-url",
            "postgres://app:db-password-1@db:5432/switchboard",
            "--jwt-secret",
            "jwt-secret-jwt-secret-jwt-secret-0001",
            "--master-encryption-key",
            &"ab".repeat(32),
            "--redis-url",
            "redis://:redis-password-1@cache:6379",
            "--internal-token",
            "internal-token-value-1",
            "--twilio-auth-token",
            "twilio-token-value-1",
            "--stripe-secret-key",
            "sk_test_value_1",
        ])
        .unwrap()
        .config;
        let printed = format!("{config:?}");
        for secret in [
            "db-password-1",
            "jwt-secret-jwt",
            &"ab".repeat(32),
            "redis-password-1",
            "internal-token-value-1",
            "twilio-token-value-1",
            "sk_test_value_1",
        ] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
        assert!(printed.contains("db:5432/switchboard"));
        assert!(printed.contains("jwt_secret: \"<set>\""));
    }
}
