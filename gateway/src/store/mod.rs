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
pub mod idempotency;
pub mod invitations;
pub mod lifecycle;
pub mod numbers;
pub mod provider_keys;
pub mod recordings;
pub mod runtime_credentials;
pub mod sessions;
pub mod system;
pub mod tenants;
pub mod usage;
pub mod users;
pub mod webhooks;

use std::str::FromStr;

use sha2::{Digest, Sha256};
use sqlx::any::{
    AnyConnectOptions, AnyPoolOptions, AnyTransactionManager, AnyTypeInfo, AnyTypeInfoKind,
};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Connection, Decode, Executor, Transaction, TransactionManager, Type};

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
    /// The task that opened a transaction did not finish (it panicked or the runtime is
    /// shutting down).
    #[error("transaction task failed: {0}")]
    Task(String),
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
            // A connection must never go back to the pool inside a transaction: the next
            // borrower's `BEGIN` would fail ("begin_with at non-zero transaction depth") or run
            // inside someone else's transaction, and on SQLite it would keep holding the write
            // lock. `write`/`read` make opening a transaction uncancellable, so this is the
            // second wall: such a connection is closed instead of reused.
            .after_release(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // A dropped `Transaction` queues its ROLLBACK to the connection's worker
                        // thread; a ping goes through the same queue, so once it answers the
                        // depth below is settled.
                        conn.ping().await?;
                    }
                    Ok(AnyTransactionManager::get_transaction_depth(conn) == 0)
                })
            })
            // sqlx pings every idle connection before handing it out: a round trip more for
            // each transaction. A connection used a moment ago is alive, so only one idle
            // for longer than `PING_IF_IDLE_FOR` is pinged (and dropped if it does not answer).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE_FOR {
                        conn.ping().await?;
                    }
                    Ok(true)
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

    /// Whether the store can take writes (for `/readyz`): opens a write transaction (on
    /// SQLite this takes the write lock) and rolls it back, within [`READY_PROBE_TIMEOUT`].
    /// A plain `SELECT 1` is not enough: it answered while every transaction failed.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let probe = async {
            let mut tx = self.write(&Scope::none()).await?;
            sqlx::query("SELECT 1").execute(&mut *tx).await?;
            tx.rollback().await?;
            Ok::<(), StoreError>(())
        };
        match tokio::time::timeout(READY_PROBE_TIMEOUT, probe).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Task(format!(
                "no write transaction within {} ms",
                READY_PROBE_TIMEOUT.as_millis()
            ))),
        }
    }

    /// Starts a transaction that may write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers queue instead of failing on lock upgrade.
    pub async fn write(&self, scope: &Scope) -> Result<Tx, StoreError> {
        self.begin(true, scope).await
    }

    /// Starts a transaction that only reads.
    pub async fn read(&self, scope: &Scope) -> Result<Tx, StoreError> {
        self.begin(false, scope).await
    }

    /// Opens a transaction in a task of its own, so that it always completes even when the
    /// caller is dropped half-way (a client that disconnects cancels its handler's future).
    ///
    /// Why: sqlx 0.8 bumps its transaction depth before `begin` returns a `Transaction`
    /// (SQLite: the worker thread has run `BEGIN` while the caller still awaits the ack and the
    /// handle lock; Postgres: the server has run `BEGIN` before the depth is counted). A future
    /// dropped in that window leaves a pooled connection inside a transaction that nobody owns:
    /// on SQLite it keeps the write lock and every later `BEGIN IMMEDIATE` on it fails with
    /// "attempted to call begin_with at non-zero transaction depth" (sqlx issues #3875, #3932,
    /// #4385). Run to completion here, the transaction reaches a `Transaction` value, whose drop
    /// rolls it back if the caller has gone.
    async fn begin(&self, write: bool, scope: &Scope) -> Result<Tx, StoreError> {
        let pool = self.pool.clone();
        let backend = self.backend;
        let scope = scope.clone();
        tokio::spawn(async move {
            match (backend, write) {
                (Backend::Sqlite, true) => Ok(pool.begin_with("BEGIN IMMEDIATE").await?),
                (Backend::Sqlite, false) => Ok(pool.begin().await?),
                (Backend::Postgres, _) => match begin_scoped_sql(&scope) {
                    // One round trip for `BEGIN` and the scope instead of two.
                    Some(sql) => Ok(pool.begin_with(sql).await?),
                    None => {
                        let mut tx = pool.begin().await?;
                        set_scope(&mut tx, &scope).await?;
                        Ok(tx)
                    }
                },
            }
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// A pooled connection idle at least this long is pinged before it is handed out.
const PING_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// How long `/readyz` waits for a write transaction before answering "not ready".
pub const READY_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// `BEGIN` and the row-level-security settings of `scope` as one simple query (Postgres),
/// when the scope's ids can be written as literals without any escaping: ids are UUIDs, and
/// anything else (which no caller passes today) takes the bound-parameter path of
/// [`set_scope`] instead, so no value is ever spliced into SQL unchecked.
fn begin_scoped_sql(scope: &Scope) -> Option<String> {
    let literal = |value: &Option<String>| {
        let value = value.as_deref().unwrap_or_default();
        (value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then(|| format!("'{value}'"))
    };
    Some(format!(
        "BEGIN; SELECT set_config('app.tenant_id', {}, true), set_config('app.user_id', {}, true)",
        literal(&scope.tenant_id)?,
        literal(&scope.user_id)?
    ))
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// The stores to test: SQLite always, Postgres when `DATABASE_URL` names one.
    async fn stores(dir: &tempfile::TempDir, max_connections: u32) -> Vec<Store> {
        let mut stores = Vec::new();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("cancel.db").display()
        );
        stores.push(Store::connect(&url, max_connections).await.unwrap());
        match std::env::var("DATABASE_URL") {
            Ok(url) if url.starts_with("postgres") => {
                stores.push(Store::connect(&url, max_connections).await.unwrap());
            }
            _ => eprintln!("DATABASE_URL unset: Postgres not tested here"),
        }
        stores
    }

    /// The one-round-trip `BEGIN` carries the scope's ids as literals only when they need no
    /// escaping; anything else goes the bound-parameter way (`None`).
    #[test]
    fn scope_is_inlined_into_begin_only_when_it_needs_no_escaping() {
        let tenant = "0b7c54be-2b1f-4a53-9a55-3d2f6b7c0e11";
        assert_eq!(
            begin_scoped_sql(&Scope::tenant(tenant)).as_deref(),
            Some(
                "BEGIN; SELECT set_config('app.tenant_id', '0b7c54be-2b1f-4a53-9a55-3d2f6b7c0e11', true), \
                 set_config('app.user_id', '', true)"
            )
        );
        assert_eq!(
            begin_scoped_sql(&Scope::none()).as_deref(),
            Some(
                "BEGIN; SELECT set_config('app.tenant_id', '', true), set_config('app.user_id', '', true)"
            )
        );
        assert!(
            begin_scoped_sql(&Scope::tenant(tenant).with_user("u-1"))
                .is_some_and(|sql| sql.contains("set_config('app.user_id', 'u-1', true)"))
        );
        let long = "a".repeat(65);
        for hostile in [
            "x'; DROP TABLE calls; --",
            "a\\b",
            "a b",
            "é",
            long.as_str(),
        ] {
            assert_eq!(begin_scoped_sql(&Scope::tenant(hostile)), None, "{hostile}");
            assert_eq!(begin_scoped_sql(&Scope::user(hostile)), None, "{hostile}");
        }
    }

    /// Issue 15: 64 concurrent writers, many of them cancelled at every point of their
    /// transaction (a client hanging up drops the handler's future). Afterwards every pooled
    /// connection must still open write transactions, and `/readyz`'s probe must pass. Before
    /// the fix, a `begin` dropped after SQLite ran `BEGIN IMMEDIATE` but before sqlx handed out
    /// the `Transaction` left a connection inside a transaction for good: every later request
    /// on it answered "attempted to call begin_with at non-zero transaction depth".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_transactions_never_poison_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        for store in stores(&dir, 4).await {
            eprintln!("backend: {:?}", store.backend());
            let errors = Arc::new(AtomicUsize::new(0));
            let cancelled = Arc::new(AtomicUsize::new(0));
            let mut clients = Vec::new();
            for client in 0..64u64 {
                let store = store.clone();
                let errors = errors.clone();
                let cancelled = cancelled.clone();
                clients.push(tokio::spawn(async move {
                    for round in 0..40u64 {
                        let work = async {
                            let mut tx = store.write(&Scope::none()).await?;
                            sqlx::query("SELECT 1").execute(&mut *tx).await?;
                            tx.commit().await?;
                            Ok::<(), StoreError>(())
                        };
                        // Every other client gives up after a few microseconds to a few
                        // hundred: a sweep over the whole begin/query/commit sequence.
                        if client % 2 == 0 {
                            let micros = (client * 37 + round * 53) % 400;
                            match tokio::time::timeout(Duration::from_micros(micros), work).await {
                                Ok(Ok(())) => {}
                                Ok(Err(e)) => {
                                    eprintln!("error: {e}");
                                    errors.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(_) => {
                                    cancelled.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        } else if let Err(e) = work.await {
                            eprintln!("error: {e}");
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
            for client in clients {
                client.await.unwrap();
            }
            assert!(
                cancelled.load(Ordering::Relaxed) > 0,
                "no request was cancelled"
            );
            assert_eq!(errors.load(Ordering::Relaxed), 0, "{:?}", store.backend());
            // Every connection of the pool (4) serves writes again, one after another.
            for _ in 0..16 {
                let result = tokio::time::timeout(Duration::from_secs(5), async {
                    let mut tx = store.write(&Scope::none()).await?;
                    sqlx::query("SELECT 1").execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok::<(), StoreError>(())
                })
                .await;
                assert!(
                    matches!(result, Ok(Ok(()))),
                    "{:?}: {result:?}",
                    store.backend()
                );
            }
            store.ping().await.unwrap();
        }
    }
}
