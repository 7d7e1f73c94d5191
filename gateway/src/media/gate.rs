//! The per-tenant media gate: how many media streams a tenant may have open at once
//! (`SWITCHBOARD_MAX_CONCURRENT_CALLS`), counted in this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Counts concurrent media streams per tenant.
#[derive(Debug, Default)]
pub struct MediaGate {
    max_per_tenant: usize,
    active: Mutex<HashMap<String, usize>>,
}

/// A held media slot; released on drop.
#[derive(Debug)]
pub struct MediaPermit {
    gate: Arc<MediaGate>,
    tenant_id: String,
}

impl MediaGate {
    /// A gate allowing `max_per_tenant` concurrent streams per tenant.
    pub fn new(max_per_tenant: usize) -> Arc<Self> {
        Arc::new(Self {
            max_per_tenant,
            active: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for the tenant, or `None` at its limit.
    pub fn try_enter(self: &Arc<Self>, tenant_id: &str) -> Option<MediaPermit> {
        let mut active = self.active.lock().ok()?;
        let count = active.entry(tenant_id.to_owned()).or_insert(0);
        if *count >= self.max_per_tenant {
            return None;
        }
        *count += 1;
        Some(MediaPermit {
            gate: Arc::clone(self),
            tenant_id: tenant_id.to_owned(),
        })
    }

    /// Streams open for a tenant now.
    pub fn active(&self, tenant_id: &str) -> usize {
        self.active
            .lock()
            .map(|a| a.get(tenant_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for MediaPermit {
    fn drop(&mut self) {
        if let Ok(mut active) = self.gate.active.lock()
            && let Some(count) = active.get_mut(&self.tenant_id)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                active.remove(&self.tenant_id);
            }
        }
    }
}
