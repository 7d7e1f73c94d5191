//! Group commit of new call records: PBX CDRs and inbound calls admitted on carrier webhooks.
//!
//! Why: on the hot path each request used to open its own write transactions (admission, then
//! the record), each a `BEGIN`, the tenant scope, a few statements and a `COMMIT` that waits
//! for the disk, and concurrent inbound calls of one tenant queued on its usage-counter row.
//! Here requests hand their records to a writer task, which takes everything queued while
//! its previous batch committed and writes it in one transaction: per tenant of the batch one
//! tenant read, one limits read, one multi-row claim of the usage events, one counter update
//! for all of them, and multi-row `INSERT … ON CONFLICT DO NOTHING` of the records
//! ([`crate::store::calls::insert_new`]). Each request is answered once its batch has
//! committed, so an acknowledgement still means the record is durably stored.
//!
//! Whatever the batch cannot decide as a whole (a tenant at its call limit, a database error)
//! rolls the batch back and runs each of its requests alone, in transactions of its own, the
//! way they ran before batching; one bad request cannot fail the others.
//!
//! A request whose client hangs up stays queued and is written (as if the client had hung up
//! just after sending); only the answer is dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use switchboard_crds::PlanOverrides;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::store::calls::{self, CallRow};
use crate::store::usage::{self as usage_store, Metric};
use crate::store::{Backend, Scope, Store, StoreError, new_id, now_ms, set_scope, tenants};
use crate::usage::{self, Admission, limits};

use super::CallStatus;

/// Most requests written in one transaction.
pub const MAX_BATCH_REQUESTS: usize = 512;
/// Most records written in one transaction (a CDR request carries up to 1,000).
pub const MAX_BATCH_RECORDS: usize = 4096;
/// Requests waiting for the writer before senders wait too (back-pressure).
const QUEUE: usize = 8192;

/// A new inbound call, verified by its carrier webhook, to be admitted and recorded.
#[derive(Debug, Clone)]
pub struct InboundCall {
    /// The tenant owning the dialled number.
    pub tenant_id: String,
    /// `twilio`, `telnyx` or `sandbox`.
    pub carrier: String,
    /// The carrier's call id.
    pub carrier_call_id: String,
    /// Caller.
    pub from: Option<String>,
    /// Dialled number.
    pub to: String,
}

/// Why an inbound call is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The number's tenant does not exist (any more).
    UnknownTenant,
    /// The tenant is suspended.
    Suspended,
    /// The tenant reached its monthly call or minute limit.
    OverLimit,
}

/// What became of an inbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundRecord {
    /// Not taken.
    Refused(Refusal),
    /// Counted and recorded (or found recorded: a retried webhook).
    Recorded {
        /// Gateway call id.
        call_id: String,
        /// Tenant slug.
        slug: String,
        /// Whether this request recorded it (false for a retry).
        new: bool,
    },
}

/// How many records of a CDR request were new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stored {
    /// Records stored now.
    pub stored: usize,
    /// Records stored before (same PBX record id).
    pub duplicates: usize,
}

enum Request {
    Cdr {
        tenant_id: String,
        rows: Vec<CallRow>,
    },
    Inbound(InboundCall),
}

enum Outcome {
    Cdr(Stored),
    Inbound(InboundRecord),
}

struct Job {
    request: Request,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

impl Request {
    fn tenant_id(&self) -> &str {
        match self {
            Request::Cdr { tenant_id, .. } => tenant_id,
            Request::Inbound(call) => &call.tenant_id,
        }
    }

    fn records(&self) -> usize {
        match self {
            Request::Cdr { rows, .. } => rows.len(),
            Request::Inbound(_) => 1,
        }
    }
}

/// The handle requests write through (cheap to clone). The writer task stops when the last
/// handle is dropped.
#[derive(Clone, Debug)]
pub struct CallWriter {
    queue: mpsc::Sender<Job>,
}

fn stopped() -> StoreError {
    StoreError::Task("the call writer has stopped".into())
}

impl CallWriter {
    /// Starts `lanes` writer tasks (at least one) on `store`. Several lanes let batches be
    /// assembled and sent while another commits; on SQLite, where writers queue on one lock,
    /// one lane is enough.
    pub fn spawn(store: Store, platform: Arc<PlanOverrides>, lanes: usize) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..lanes.max(1) {
            let (store, platform, receiver) = (store.clone(), platform.clone(), receiver.clone());
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&receiver).await {
                    write_batch(&store, &platform, batch).await;
                }
            });
        }
        Self { queue }
    }

    async fn submit(&self, request: Request) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { request, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Stores checked CDR records of one tenant (each with its PBX record id as carrier call
    /// id), all or none; records already stored count as duplicates.
    pub async fn store_cdrs(
        &self,
        tenant_id: &str,
        rows: Vec<CallRow>,
    ) -> Result<Stored, StoreError> {
        match self
            .submit(Request::Cdr {
                tenant_id: tenant_id.to_owned(),
                rows,
            })
            .await?
        {
            Outcome::Cdr(stored) => Ok(stored),
            Outcome::Inbound(_) => Err(StoreError::Corrupt(
                "writer answered the wrong request".into(),
            )),
        }
    }

    /// Admits a new inbound call (tenant active, within its monthly limits, counted once per
    /// carrier call) and records it as ringing.
    pub async fn record_inbound(&self, call: InboundCall) -> Result<InboundRecord, StoreError> {
        match self.submit(Request::Inbound(call)).await? {
            Outcome::Inbound(record) => Ok(record),
            Outcome::Cdr(_) => Err(StoreError::Corrupt(
                "writer answered the wrong request".into(),
            )),
        }
    }
}

/// Waits for a request, then takes whatever else is queued (within the batch bounds).
async fn next_batch(receiver: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut records = first.request.records();
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH_REQUESTS && records < MAX_BATCH_RECORDS {
        match receiver.try_recv() {
            Ok(job) => {
                records += job.request.records();
                batch.push(job);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn write_batch(store: &Store, platform: &PlanOverrides, batch: Vec<Job>) {
    let (requests, replies): (Vec<Request>, Vec<_>) = batch
        .into_iter()
        .map(|job| (job.request, job.reply))
        .unzip();
    match together(store, platform, &requests).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // The client may have gone: its record is stored all the same.
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(reason) => {
            if let Together::Store(error) = &reason {
                tracing::warn!(%error, requests = requests.len(), "batched call write failed; writing its requests one by one");
            }
            for (request, reply) in requests.into_iter().zip(replies) {
                let _ = reply.send(alone(store, platform, request).await);
            }
        }
    }
}

/// Why a batch is written request by request instead.
enum Together {
    /// A tenant of the batch is too close to its call limit to admit its calls at once.
    NearLimit,
    /// A record without a carrier call id (the batch insert matches records by it).
    Unkeyed,
    /// The database failed.
    Store(StoreError),
}

impl From<StoreError> for Together {
    fn from(error: StoreError) -> Self {
        Together::Store(error)
    }
}

impl From<sqlx::Error> for Together {
    fn from(error: sqlx::Error) -> Self {
        Together::Store(error.into())
    }
}

fn call_event_id(call: &InboundCall) -> String {
    format!("call:{}:{}", call.carrier, call.carrier_call_id)
}

fn inbound_row(call: &InboundCall, now: i64) -> CallRow {
    CallRow {
        id: new_id(),
        tenant_id: call.tenant_id.clone(),
        carrier: call.carrier.clone(),
        carrier_call_id: Some(call.carrier_call_id.clone()),
        direction: "inbound".to_owned(),
        from_number: call.from.clone(),
        to_number: Some(call.to.clone()),
        status: CallStatus::Ringing.as_str().to_owned(),
        started_at: now,
        source: "carrier".to_owned(),
        updated_at: now,
        ..CallRow::default()
    }
}

/// The whole batch in one transaction, tenant by tenant.
async fn together(
    store: &Store,
    platform: &PlanOverrides,
    requests: &[Request],
) -> Result<Vec<Outcome>, Together> {
    let mut by_tenant: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, request) in requests.iter().enumerate() {
        by_tenant.entry(request.tenant_id()).or_default().push(i);
    }
    let mut outcomes: Vec<Option<Outcome>> = requests.iter().map(|_| None).collect();
    // The transaction starts in the scope of the batch's first tenant (most batches have only
    // one), so only the others need a scope change of their own.
    let first = by_tenant.keys().next().copied().unwrap_or_default();
    let mut tx = store.write(&Scope::tenant(first)).await?;
    // The usage counters are updated last, just before the commit: an update locks its
    // tenant's counter row until the commit, so the other lane's batch of the same tenant
    // waits only for that update and the commit, not for the record inserts too.
    let mut counts: Vec<PendingCount> = Vec::new();
    let mut scoped = first.to_owned();
    for (tenant_id, members) in by_tenant {
        if store.backend() == Backend::Postgres && tenant_id != scoped {
            set_scope(&mut tx, &Scope::tenant(tenant_id)).await?;
            tenant_id.clone_into(&mut scoped);
        }
        let now = now_ms();
        // The records of this tenant, with the request each belongs to.
        let mut rows: Vec<(usize, CallRow)> = Vec::new();
        let inbound: Vec<(usize, &InboundCall)> = members
            .iter()
            .filter_map(|&i| match &requests[i] {
                Request::Inbound(call) => Some((i, call)),
                Request::Cdr { .. } => None,
            })
            .collect();
        let mut slug = String::new();
        if !inbound.is_empty() {
            let refusal = match tenants::by_id(&mut tx, tenant_id).await? {
                None => Some(Refusal::UnknownTenant),
                Some(tenant) if tenant.suspended.0 => Some(Refusal::Suspended),
                Some(tenant) => {
                    if let Some(count) =
                        claim_together(&mut tx, platform, &tenant.id, &tenant.plan, &inbound, now)
                            .await?
                    {
                        counts.push(count);
                    }
                    slug = tenant.slug;
                    None
                }
            };
            for &(i, call) in &inbound {
                match refusal {
                    Some(refusal) => {
                        outcomes[i] = Some(Outcome::Inbound(InboundRecord::Refused(refusal)))
                    }
                    None => rows.push((i, inbound_row(call, now))),
                }
            }
        }
        for &i in &members {
            if let Request::Cdr { rows: records, .. } = &requests[i] {
                rows.extend(records.iter().map(|row| (i, row.clone())));
            }
        }
        if rows.iter().any(|(_, row)| row.carrier_call_id.is_none()) {
            return Err(Together::Unkeyed);
        }
        // One lock order for every batch (lanes never wait on each other in a circle).
        let mut ordered: Vec<&CallRow> = rows.iter().map(|(_, row)| row).collect();
        ordered.sort_by(|a, b| {
            (&a.carrier, &a.carrier_call_id).cmp(&(&b.carrier, &b.carrier_call_id))
        });
        let inserted = calls::insert_new(&mut tx, &ordered).await?;
        // The first record of a key in the batch is the one inserted (if any was).
        let mut first_of: HashMap<(&str, &str), &str> = HashMap::new();
        let mut cdr_counts: HashMap<usize, Stored> = HashMap::new();
        for (i, row) in &rows {
            let carrier_call_id = row.carrier_call_id.as_deref().unwrap_or_default();
            let key = (row.carrier.as_str(), carrier_call_id);
            let new = !first_of.contains_key(&key)
                && inserted.contains(&(row.carrier.clone(), carrier_call_id.to_owned()));
            if new {
                first_of.insert(key, row.id.as_str());
            }
            match &requests[*i] {
                Request::Cdr { .. } => {
                    let counts = cdr_counts.entry(*i).or_default();
                    if new {
                        counts.stored += 1;
                    } else {
                        counts.duplicates += 1;
                    }
                }
                Request::Inbound(_) => {
                    let call_id = if new {
                        row.id.clone()
                    } else if let Some(first) = first_of.get(&key) {
                        (*first).to_owned()
                    } else {
                        // A retry of a call recorded by an earlier batch.
                        calls::by_carrier_id(&mut tx, tenant_id, &row.carrier, carrier_call_id)
                            .await?
                            .ok_or_else(|| {
                                StoreError::Corrupt("call vanished after insert".into())
                            })?
                            .id
                    };
                    outcomes[*i] = Some(Outcome::Inbound(InboundRecord::Recorded {
                        call_id,
                        slug: slug.clone(),
                        new,
                    }));
                }
            }
        }
        for &i in &members {
            if matches!(requests[i], Request::Cdr { .. }) {
                outcomes[i] = Some(Outcome::Cdr(cdr_counts.remove(&i).unwrap_or_default()));
            }
        }
    }
    for count in &counts {
        if store.backend() == Backend::Postgres && count.tenant_id != scoped {
            set_scope(&mut tx, &Scope::tenant(&count.tenant_id)).await?;
            count.tenant_id.clone_into(&mut scoped);
        }
        count_together(&mut tx, count).await?;
    }
    tx.commit().await?;
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.ok_or_else(|| {
                Together::Store(StoreError::Corrupt(
                    "a batched request got no outcome".into(),
                ))
            })
        })
        .collect()
}

/// A tenant's newly claimed inbound calls of the batch, to be counted against its limits.
struct PendingCount {
    tenant_id: String,
    period: String,
    limits: switchboard_crds::PlanLimits,
    amount: i64,
}

/// Claims the batch's new inbound calls of one tenant (each carrier call once, as
/// [`usage::admit_call`] does one by one); `None` when every one was claimed before (a retry).
async fn claim_together(
    tx: &mut crate::store::Tx,
    platform: &PlanOverrides,
    tenant_id: &str,
    plan: &str,
    inbound: &[(usize, &InboundCall)],
    now: i64,
) -> Result<Option<PendingCount>, Together> {
    let period = limits::period_of(now);
    let limits = usage::limits_for(tx, platform, tenant_id, plan).await?;
    let mut events: Vec<String> = inbound
        .iter()
        .map(|(_, call)| call_event_id(call))
        .collect();
    events.sort();
    events.dedup();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let claimed =
        usage_store::claim_events(tx, tenant_id, &events, &period, Metric::CallCount, 1, now)
            .await?;
    if claimed.is_empty() {
        return Ok(None);
    }
    Ok(Some(PendingCount {
        tenant_id: tenant_id.to_owned(),
        period,
        limits,
        amount: i64::try_from(claimed.len()).unwrap_or(i64::MAX),
    }))
}

/// Counts claimed calls at once, all of them only if all fit within the tenant's limits.
async fn count_together(tx: &mut crate::store::Tx, count: &PendingCount) -> Result<(), Together> {
    let mut guards = Vec::new();
    if let Some(limit) = count.limits.monthly_calls {
        guards.push((Metric::CallCount, i64::try_from(limit).unwrap_or(i64::MAX)));
    }
    if let Some(limit) = count.limits.monthly_minutes {
        guards.push((
            Metric::CallMinutes,
            i64::try_from(limit).unwrap_or(i64::MAX),
        ));
    }
    let Some(value) = usage_store::increment_within_by(
        tx,
        &count.tenant_id,
        &count.period,
        Metric::CallCount,
        count.amount,
        &guards,
        now_ms(),
    )
    .await?
    else {
        return Err(Together::NearLimit);
    };
    // Raising is idempotent per level, so the batch's last value raises what each step would.
    usage::raise_thresholds(
        tx,
        &count.tenant_id,
        &count.period,
        Metric::CallCount,
        value,
        count.limits.monthly_calls,
    )
    .await?;
    Ok(())
}

/// One request in transactions of its own (the path before batching).
async fn alone(
    store: &Store,
    platform: &PlanOverrides,
    request: Request,
) -> Result<Outcome, StoreError> {
    match request {
        Request::Cdr { tenant_id, rows } => {
            let mut stored = Stored::default();
            let mut tx = store.write(&Scope::tenant(&tenant_id)).await?;
            for row in rows {
                if calls::insert_or_get(&mut tx, &row).await?.id == row.id {
                    stored.stored += 1;
                } else {
                    stored.duplicates += 1;
                }
            }
            tx.commit().await?;
            Ok(Outcome::Cdr(stored))
        }
        Request::Inbound(call) => Ok(Outcome::Inbound(
            inbound_alone(store, platform, &call).await?,
        )),
    }
}

async fn inbound_alone(
    store: &Store,
    platform: &PlanOverrides,
    call: &InboundCall,
) -> Result<InboundRecord, StoreError> {
    let Some(tenant) = tenants::load(store, &call.tenant_id).await? else {
        return Ok(InboundRecord::Refused(Refusal::UnknownTenant));
    };
    if tenant.suspended.0 {
        return Ok(InboundRecord::Refused(Refusal::Suspended));
    }
    if usage::admit_call(
        store,
        platform,
        &tenant.id,
        &tenant.plan,
        &call_event_id(call),
    )
    .await?
        == Admission::OverLimit
    {
        return Ok(InboundRecord::Refused(Refusal::OverLimit));
    }
    let fresh = inbound_row(call, now_ms());
    let mut tx = store.write(&Scope::tenant(&tenant.id)).await?;
    let stored = calls::insert_or_get(&mut tx, &fresh).await?;
    tx.commit().await?;
    Ok(InboundRecord::Recorded {
        new: stored.id == fresh.id,
        call_id: stored.id,
        slug: tenant.slug,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_within_the_statement_limit() {
        assert_eq!(calls::chunk_sizes(0), Vec::<usize>::new());
        assert_eq!(calls::chunk_sizes(1), vec![1]);
        assert_eq!(calls::chunk_sizes(37), vec![32, 4, 1]);
        assert_eq!(calls::chunk_sizes(600), vec![256, 256, 64, 16, 8]);
    }
}
