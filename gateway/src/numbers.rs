//! Number routing: the in-memory dialled-number → tenant table consulted on every voice
//! webhook, reloaded from the database periodically (and at once after a number is routed or
//! released), so routing a call costs a hash lookup instead of a query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::store::numbers::{self, NumberRow};
use crate::store::{Store, StoreError, system};

/// Number → routing row.
#[derive(Clone, Default, Debug)]
pub struct NumberTable {
    inner: Arc<RwLock<HashMap<String, NumberRow>>>,
    last_miss_reload: Arc<Mutex<Option<Instant>>>,
}

/// Least time between two reloads caused by unknown numbers: webhooks for numbers we do not
/// route arrive before their signature can be checked, so they must not each cost a query.
const MISS_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Normalises a number as carriers send it (`+1 555…`, `tel:+1555…`) to bare E.164.
pub fn normalise(number: &str) -> String {
    let trimmed = number.trim();
    let trimmed = trimmed.strip_prefix("tel:").unwrap_or(trimmed);
    let trimmed = trimmed.strip_prefix("sip:").unwrap_or(trimmed);
    let trimmed = trimmed.split('@').next().unwrap_or(trimmed);
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    format!("+{digits}")
}

impl NumberTable {
    /// The routing row of a dialled number.
    pub fn lookup(&self, dialled: &str) -> Option<NumberRow> {
        let key = normalise(dialled);
        self.inner.read().ok()?.get(&key).cloned()
    }

    /// The routing row of a dialled number, reloading the table on a miss (a number added
    /// moments ago must not wait for the next periodic refresh), at most once a second.
    pub async fn route(
        &self,
        store: &Store,
        dialled: &str,
    ) -> Result<Option<NumberRow>, StoreError> {
        if let Some(row) = self.lookup(dialled) {
            return Ok(Some(row));
        }
        if self.reload_after_miss(store).await? {
            return Ok(self.lookup(dialled));
        }
        Ok(None)
    }

    /// Replaces the table with the database's current rows.
    pub async fn reload(&self, store: &Store) -> Result<usize, StoreError> {
        let mut tx = system::read(store).await?;
        let rows = numbers::all(&mut tx).await?;
        tx.commit().await?;
        let map: HashMap<String, NumberRow> = rows
            .into_iter()
            .map(|row| (normalise(&row.e164), row))
            .collect();
        let count = map.len();
        if let Ok(mut guard) = self.inner.write() {
            *guard = map;
        }
        Ok(count)
    }

    /// Reloads after a lookup miss, at most once per [`MISS_RELOAD_INTERVAL`]; `false` when
    /// throttled.
    pub async fn reload_after_miss(&self, store: &Store) -> Result<bool, StoreError> {
        {
            let Ok(mut last) = self.last_miss_reload.lock() else {
                return Ok(false);
            };
            if last.is_some_and(|at| at.elapsed() < MISS_RELOAD_INTERVAL) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        self.reload(store).await?;
        Ok(true)
    }

    /// Reloads every `every` until the task is aborted.
    pub fn spawn_refresh(&self, store: Store, every: Duration) -> tokio::task::JoinHandle<()> {
        let table = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every.max(Duration::from_secs(1)));
            loop {
                ticker.tick().await;
                if let Err(error) = table.reload(&store).await {
                    tracing::warn!(%error, "cannot reload the dialled-number table");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalise_to_e164() {
        assert_eq!(normalise("+1 (555) 010-0"), "+15550100");
        assert_eq!(normalise("tel:+15550100"), "+15550100");
        assert_eq!(normalise("sip:+15550100@pbx.example"), "+15550100");
    }
}
