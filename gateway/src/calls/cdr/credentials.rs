//! The tenants' CDR credentials, checked on every CDR post, held in memory for a few seconds.
//!
//! Why: a PBX posts its records one by one, each with basic auth; reading the tenant and its
//! credential cost two read transactions per record, more than storing it. What is kept is
//! what the database holds (the tenant id, the user name and the SHA-256 of the password),
//! never the password, and every check still compares both in constant time against it; so a
//! cached entry answers exactly as the database would have at the time it was read. Only
//! credentials that exist are kept (an unknown tenant or a tenant without a credential is
//! looked up each time, behind the failure throttle).
//!
//! A rotation through the API forgets the tenant's entry at once on the replica that served
//! it; other replicas accept the old password for at most the cache's lifetime
//! (`SWITCHBOARD_CDR_CREDENTIAL_CACHE_SECS`, default 5 s; 0 turns the cache off).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::CdrError;
use crate::store::{Scope, Store, calls, constant_time_eq, tenants, token_hash};

/// Most tenants kept; past this the cache starts over (bounded memory whatever the keys).
const MAX_ENTRIES: usize = 10_000;

#[derive(Clone)]
struct Entry {
    tenant_id: String,
    username: String,
    password_hash: String,
    read_at: Instant,
}

/// Tenant key (slug or id, as the PBX's URL names it) → the credential read from the store.
#[derive(Default)]
pub struct CdrCredentials {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for CdrCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdrCredentials")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CdrCredentials {
    /// A cache keeping credentials for `ttl` (zero: every check reads the store).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    fn cached(&self, key: &str) -> Option<Entry> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|entry| entry.read_at.elapsed() < self.ttl)
            .cloned()
    }

    fn keep(&self, key: &str, entry: Entry) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key.to_owned(), entry);
        }
    }

    /// Forgets a tenant's credential (after it was rotated on this replica).
    pub fn forget_tenant(&self, tenant_id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, entry| entry.tenant_id != tenant_id);
        }
    }

    /// The id of the tenant `key` names, if `user`/`password` is its CDR credential.
    /// Unknown tenants, tenants without a credential and wrong credentials are all
    /// [`CdrError::Unauthorized`]. The credential is read in a read transaction: a wrong
    /// password never takes SQLite's write lock (issue 15).
    pub async fn verify(
        &self,
        store: &Store,
        key: &str,
        user: &str,
        password: &str,
    ) -> Result<String, CdrError> {
        let entry = match self.cached(key) {
            Some(entry) => entry,
            None => {
                let tenant = tenants::load_by_key(store, key)
                    .await?
                    .ok_or(CdrError::Unauthorized)?;
                let mut tx = store.read(&Scope::tenant(&tenant.id)).await?;
                let credential = calls::cdr_credential(&mut tx, &tenant.id).await?;
                tx.commit().await?;
                let (username, password_hash) = credential.ok_or(CdrError::Unauthorized)?;
                let entry = Entry {
                    tenant_id: tenant.id,
                    username,
                    password_hash,
                    read_at: Instant::now(),
                };
                self.keep(key, entry.clone());
                entry
            }
        };
        let user_ok = constant_time_eq(user, &entry.username);
        let password_ok = constant_time_eq(&token_hash(password), &entry.password_hash);
        if user_ok & password_ok {
            Ok(entry.tenant_id)
        } else {
            Err(CdrError::Unauthorized)
        }
    }
}
