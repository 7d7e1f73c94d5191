//! The one store of the gateway, over Postgres (production) or SQLite (embedded default).
//!
//! Why `sqlx::Any` rather than an enum over `PgPool`/`SqlitePool`: every query is written once
//! and runs on both backends, so the two cannot drift and the same HTTP tests cover both. The
//! price is a portable schema: ids are UUID strings in TEXT columns, times are Unix
//! milliseconds in BIGINT columns, and boolean columns are read through [`Flag`] (BOOLEAN on
//! Postgres, INTEGER on SQLite). Placeholders are `$1…`, which both drivers accept.
//!
//! Tenant scoping: every query names its tenant in its `WHERE` clause, and on Postgres each
//! transaction also sets `app.tenant_id` / `app.user_id` (transaction-local) for the row-level
//! security policies in `migrations/postgres`, a second wall if a query forgets its filter.

pub mod api_keys;
pub mod audit;
pub mod billing;
pub mod calls;
pub mod campaigns;
pub mod credentials;
pub mod dialer;
pub mod invitations;
pub mod numbers;
pub mod provider_keys;
pub mod runtime_credentials;
pub mod sessions;
pub mod system;
pub mod tenants;
pub mod usage;
pub mod users;
pub mod webhooks;

use std::str::FromStr;

use sha2::{Digest, Sha256};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyTypeInfo, AnyTypeInfoKind};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Decode, Executor, Transaction, Type};

/// Migrations for Postgres, embedded at compile time.
pub static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");
/// Migrations for SQLite, embedded at compile time.
pub static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");

/// A database error. Callers map it to a 500 except where a constraint tells something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Any error from the driver.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A URL that names neither Postgres nor SQLite.
    #[error("unsupported database URL scheme (expected postgres:// or sqlite://)")]
    UnsupportedUrl,
    /// A stored value that cannot be interpreted (e.g. an unknown role).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether this error is a unique-constraint violation (on either backend).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL, with row-level security.
    Postgres,
    /// SQLite, the embedded default.
    Sqlite,
}

/// Whose rows a transaction may touch. On Postgres this feeds the row-level-security policies.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The tenant the transaction works for.
    pub tenant_id: Option<String>,
    /// The user the transaction works for (reads their own memberships across tenants).
    pub user_id: Option<String>,
}

impl Scope {
    /// No tenant and no user: only tables without row-level security are visible.
    pub fn none() -> Self {
        Self::default()
    }

    /// Scoped to one tenant.
    pub fn tenant(tenant_id: &str) -> Self {
        Self {
            tenant_id: Some(tenant_id.to_owned()),
            user_id: None,
        }
    }

    /// Scoped to one user's memberships.
    pub fn user(user_id: &str) -> Self {
        Self {
            tenant_id: None,
            user_id: Some(user_id.to_owned()),
        }
    }

    /// Adds a user to a tenant scope.
    pub fn with_user(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.to_owned());
        self
    }
}

/// A transaction of the store (either backend).
pub type Tx = Transaction<'static, Any>;

/// Connection pool and backend.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `url` (a SQLite file is created when the URL says `mode=rwc`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; writers wait instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend })
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The underlying pool (for tests and tools; handlers go through [`Store::write`]/[`Store::read`]).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Starts a transaction that may write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers queue instead of failing on lock upgrade.
    pub async fn write(&self, scope: &Scope) -> Result<Tx, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        self.scoped(tx, scope).await
    }

    /// Starts a transaction that only reads.
    pub async fn read(&self, scope: &Scope) -> Result<Tx, StoreError> {
        let tx = self.pool.begin().await?;
        self.scoped(tx, scope).await
    }

    async fn scoped(&self, mut tx: Tx, scope: &Scope) -> Result<Tx, StoreError> {
        if self.backend == Backend::Postgres {
            set_scope(&mut tx, scope).await?;
        }
        Ok(tx)
    }
}

/// Sets the row-level-security settings for the rest of the transaction (Postgres only).
pub async fn set_scope(tx: &mut Tx, scope: &Scope) -> Result<(), StoreError> {
    sqlx::query(
        "SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true)",
    )
    .bind(scope.tenant_id.clone().unwrap_or_default())
    .bind(scope.user_id.clone().unwrap_or_default())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A boolean column: BOOLEAN on Postgres, INTEGER 0/1 on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <bool as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        ty.kind() == AnyTypeInfoKind::Bool || ty.kind().is_integer()
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        match <bool as Decode<Any>>::decode(value.clone()) {
            Ok(flag) => Ok(Flag(flag)),
            Err(_) => Ok(Flag(<i64 as Decode<Any>>::decode(value)? != 0)),
        }
    }
}

/// Now, in Unix milliseconds (the unit of every time column).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new random id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// SHA-256 of a high-entropy token, hex: how tokens and API keys are stored (a fast hash is
/// right here: the input has 256 random bits, so there is nothing to brute-force).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random secret of 32 bytes, URL-safe base64 without padding.
pub fn random_secret() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Constant-time equality of two strings (for hashes and secrets).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
