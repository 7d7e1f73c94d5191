//! The campaign dialer: places the calls of registered campaigns from the campaign's own
//! number, within its calling window, paced, retried, and never twice for one attempt.
//!
//! One pass ([`Dialer::pass`]) works every live campaign:
//! 1. **settle** — attempts that ended (the carrier's status callback or the runtime's
//!    `callEnded` marked them) move their contacts on: retry after a backoff or a final state;
//!    attempts nobody heard back about for too long end as `unknown` and are never retried;
//! 2. **hold** — a suspended campaign or tenant, a plan without campaigns or at its monthly
//!    limit, a caller id that is not routed, or a closed calling window stops dialling, with
//!    the reason stored for the progress API and the operator;
//! 3. **claim** — in one transaction, with the campaign row locked (`FOR UPDATE SKIP LOCKED`
//!    on Postgres, so replicas never claim for the same campaign at once; SQLite has a single
//!    writer), count calls under way and started in the last minute, pick due contacts
//!    (`SKIP LOCKED` too), move them to `dialing` and write one attempt and one call record
//!    each. Only after that commit is the carrier called, so a crash at any point leaves an
//!    attempt row behind instead of a forgotten call;
//! 4. **place** — admit the call against the plan, call the carrier with the attempt id as
//!    idempotency key / client state, record the carrier's call id or the failure.
//!
//! Written by hand rather than on a job-queue crate: the rules (window, pacing from the
//! database's view of calls under way, per-contact retry state) are the product itself, and
//! the only queue needed is the contacts table with row locks.

pub mod carrier;
pub mod clock;
pub mod pacing;
pub mod retry;
pub mod sandbox_callee;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use switchboard_carriers::{Carrier, CarrierError};
use switchboard_crds::schedule::CallingWindow;
use switchboard_crds::{CampaignPhase, CampaignSpec};

use self::clock::Clock;
use self::pacing::{RATE_WINDOW_MS, Recent};
use self::retry::{Next, Outcome};
use crate::state::AppState;
use crate::store::calls::{self, CallRow, CallStatus};
use crate::store::campaigns::CampaignRow;
use crate::store::dialer::{self as rows, DueContact, EndedAttempt, NewAttempt};
use crate::store::numbers::NumberRow;
use crate::store::tenants::TenantRow;
use crate::store::usage as counters;
use crate::store::{Scope, StoreError, new_id, now_ms, system, tenants};
use crate::usage::{self, Admission};

/// An attempt left `dialing` this long (the dialer died before recording the carrier's
/// answer) ends as `unknown`.
pub const DIALING_TIMEOUT_MS: i64 = 5 * 60 * 1000;
/// A placed call whose end was never reported ends as `unknown` after this long.
pub const CALL_TIMEOUT_MS: i64 = 4 * 3600 * 1000;
/// When an attempt never reached the carrier (rate limit, plan limit, missing credentials),
/// the contact is tried again this much later without using up an attempt.
pub const NOT_PLACED_RETRY_MS: i64 = 60 * 1000;
/// Carrier requests in flight at once per campaign and pass.
const PLACE_CONCURRENCY: usize = 8;

/// What one pass did (summed over campaigns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Campaigns looked at.
    pub campaigns: u64,
    /// Contacts claimed and attempts written.
    pub claimed: u64,
    /// Calls the carrier accepted.
    pub placed: u64,
    /// Attempts that ended without a call (carrier refused, plan limit, …).
    pub not_placed: u64,
    /// Ended attempts whose contacts were moved on.
    pub settled: u64,
    /// Attempts ended as `unknown` by the timeouts.
    pub expired: u64,
    /// Database transactions the pass ran.
    pub transactions: u64,
}

impl PassReport {
    fn add(&mut self, other: PassReport) {
        self.campaigns += other.campaigns;
        self.claimed += other.claimed;
        self.placed += other.placed;
        self.not_placed += other.not_placed;
        self.settled += other.settled;
        self.expired += other.expired;
        self.transactions += other.transactions;
    }

    /// Decisions taken: contacts claimed plus attempts settled.
    pub fn decisions(&self) -> u64 {
        self.claimed + self.settled
    }
}

/// Why a campaign is not dialling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hold {
    phase: CampaignPhase,
    reason: &'static str,
}

impl Hold {
    const fn paused(reason: &'static str) -> Self {
        Self {
            phase: CampaignPhase::Paused,
            reason,
        }
    }

    const fn failed(reason: &'static str) -> Self {
        Self {
            phase: CampaignPhase::Failed,
            reason,
        }
    }
}

/// A claimed contact about to be dialled.
#[derive(Debug, Clone)]
struct Claimed {
    attempt: NewAttempt,
    phone: String,
}

/// The dialer. Cheap to clone; every replica may run one.
#[derive(Clone)]
pub struct Dialer {
    state: AppState,
    clock: Arc<dyn Clock>,
    instance: String,
}

impl Dialer {
    /// A dialer over the gateway's state, judging time by `clock`.
    pub fn new(state: AppState, clock: Arc<dyn Clock>) -> Self {
        Self {
            state,
            clock,
            instance: new_id(),
        }
    }

    /// Runs a pass every `interval` until the task is aborted. Aborting mid-pass is safe:
    /// attempts are written before carrier calls (see the module docs).
    pub fn spawn(self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticker.tick().await;
                // A draining gateway places no new calls (another replica's dialer does).
                if self.state.drain.is_draining() {
                    continue;
                }
                if let Err(error) = self.pass().await {
                    tracing::warn!(%error, "dialer pass failed");
                }
            }
        })
    }

    /// One pass over every campaign with work. Errors of one campaign are logged and do not
    /// stop the others.
    pub async fn pass(&self) -> Result<PassReport, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = system::read(&self.state.store).await?;
        let campaigns = rows::campaigns_to_work(&mut tx).await?;
        tx.commit().await?;
        let mut report = PassReport {
            transactions: 1,
            ..PassReport::default()
        };
        for campaign in &campaigns {
            match self.work(campaign, now).await {
                Ok(done) => report.add(done),
                Err(error) => tracing::warn!(
                    %error, tenant_id = %campaign.tenant_id, campaign = %campaign.name,
                    "dialer could not work a campaign"
                ),
            }
        }
        Ok(report)
    }

    async fn work(&self, campaign: &CampaignRow, now: i64) -> Result<PassReport, StoreError> {
        let mut report = PassReport {
            campaigns: 1,
            ..PassReport::default()
        };
        let spec = serde_json::from_str::<CampaignSpec>(&campaign.spec);
        self.settle(campaign, spec.as_ref().ok(), now, &mut report)
            .await?;
        let live = campaign.deleted_at.is_none()
            && campaign.phase != CampaignPhase::Completed.as_str()
            && campaign.phase != CampaignPhase::Failed.as_str();
        if !live {
            return Ok(report);
        }
        let Some(tenant) = tenants::load(&self.state.store, &campaign.tenant_id).await? else {
            return Ok(report);
        };
        let spec = match spec {
            Ok(spec) => spec,
            Err(_) => {
                self.hold(campaign, Hold::failed("InvalidSpec"), now)
                    .await?;
                return Ok(report);
            }
        };
        let window = match CallingWindow::new(&spec.schedule) {
            Ok(window) => window,
            Err(error) => {
                tracing::warn!(%error, campaign = %campaign.name, "campaign schedule is invalid");
                self.hold(campaign, Hold::failed("InvalidSchedule"), now)
                    .await?;
                return Ok(report);
            }
        };
        let number = self
            .state
            .numbers
            .route(&self.state.store, &campaign.from_number)
            .await?
            .filter(|n| n.tenant_id == campaign.tenant_id);
        let moved = report.settled + report.expired > 0;
        if let Some(hold) = self
            .hold_reason(&spec, &tenant, number.as_ref(), &window, now)
            .await?
        {
            report.transactions += 2;
            if self.hold(campaign, hold, now).await? || moved {
                self.refresh_progress(campaign, &mut report).await?;
            }
            return Ok(report);
        }
        let Some(number) = number else {
            return Ok(report);
        };
        let (claimed, skipped) = self.claim(campaign, &spec, &number, now).await?;
        report.transactions += 1;
        report.claimed = claimed.len() as u64;
        let results: Vec<Result<bool, StoreError>> = futures::stream::iter(claimed)
            .map(|claimed| self.place(claimed, &tenant, &number))
            .buffer_unordered(PLACE_CONCURRENCY)
            .collect()
            .await;
        for result in results {
            report.transactions += 2;
            if result? {
                report.placed += 1;
            } else {
                report.not_placed += 1;
            }
        }
        if moved || report.claimed > 0 || skipped > 0 {
            self.refresh_progress(campaign, &mut report).await?;
        }
        Ok(report)
    }

    /// Recomputes progress after contacts moved, which records the campaign as `Completed`
    /// (and queues `campaign.finished`) once every contact is done. Skipped on idle passes:
    /// it counts every contact of the campaign.
    async fn refresh_progress(
        &self,
        campaign: &CampaignRow,
        report: &mut PassReport,
    ) -> Result<(), StoreError> {
        report.transactions += 1;
        crate::campaigns::progress_of(&self.state.store, &campaign.tenant_id, &campaign.name)
            .await?;
        Ok(())
    }

    /// Step 1: time out stuck attempts and move contacts on after ended attempts.
    async fn settle(
        &self,
        campaign: &CampaignRow,
        spec: Option<&CampaignSpec>,
        now: i64,
        report: &mut PassReport,
    ) -> Result<(), StoreError> {
        let tenant = campaign.tenant_id.as_str();
        let mut tx = self.state.store.write(&Scope::tenant(tenant)).await?;
        report.transactions += 1;
        report.expired = rows::expire_stuck(
            &mut tx,
            tenant,
            &campaign.name,
            now - DIALING_TIMEOUT_MS,
            now - CALL_TIMEOUT_MS,
            now,
        )
        .await?;
        let retry = spec.map(|s| s.retry.clone()).unwrap_or_default();
        for ended in rows::unsettled(&mut tx, tenant, &campaign.name).await? {
            let (state, retry_at) = verdict(&retry, &ended, now);
            rows::settle(
                &mut tx,
                tenant,
                &campaign.name,
                &ended,
                state,
                retry_at,
                now,
            )
            .await?;
            report.settled += 1;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Step 2: why the campaign must not dial now, if it must not.
    async fn hold_reason(
        &self,
        spec: &CampaignSpec,
        tenant: &TenantRow,
        number: Option<&NumberRow>,
        window: &CallingWindow,
        now: i64,
    ) -> Result<Option<Hold>, StoreError> {
        if spec.suspend {
            return Ok(Some(Hold::paused("Suspended")));
        }
        if tenant.suspended.0 {
            return Ok(Some(Hold::paused("TenantSuspended")));
        }
        let mut tx = self.state.store.read(&Scope::tenant(&tenant.id)).await?;
        let limits =
            usage::limits_for(&mut tx, &self.state.plan_limits, &tenant.id, &tenant.plan).await?;
        let used = counters::get(&mut tx, &tenant.id, &usage::limits::period_of(now_ms())).await?;
        tx.commit().await?;
        if !limits.campaigns {
            return Ok(Some(Hold::paused("PlanForbidsCampaigns")));
        }
        let reached = |limit: Option<u64>, value: i64| {
            limit.is_some_and(|l| u64::try_from(value).unwrap_or(0) >= l)
        };
        if reached(limits.monthly_calls, used.call_count)
            || reached(limits.monthly_minutes, used.call_minutes)
        {
            return Ok(Some(Hold::paused("PlanLimitReached")));
        }
        if number.is_none() {
            return Ok(Some(Hold::paused("FromNumberNotReady")));
        }
        if !window.is_open(now) {
            return Ok(Some(Hold {
                phase: CampaignPhase::Running,
                reason: "OutsideWindow",
            }));
        }
        Ok(None)
    }

    /// Records why the campaign is not dialling; `true` when that changed.
    async fn hold(&self, campaign: &CampaignRow, hold: Hold, now: i64) -> Result<bool, StoreError> {
        let mut tx = self
            .state
            .store
            .write(&Scope::tenant(&campaign.tenant_id))
            .await?;
        let changed = rows::set_phase(
            &mut tx,
            &campaign.tenant_id,
            &campaign.name,
            hold.phase.as_str(),
            Some(hold.reason),
            now,
        )
        .await?;
        if changed {
            tracing::info!(
                campaign = %campaign.name, phase = hold.phase.as_str(), reason = hold.reason,
                "campaign is not dialling"
            );
        }
        tx.commit().await?;
        if changed {
            self.state
                .metrics
                .dialer_holds
                .with_label_values(&[hold.reason])
                .inc();
        }
        Ok(changed)
    }

    /// Step 3: claims due contacts within the pacing limits and writes their attempts; also
    /// says how many pending contacts were finished for being on the do-not-call list.
    async fn claim(
        &self,
        campaign: &CampaignRow,
        spec: &CampaignSpec,
        number: &NumberRow,
        now: i64,
    ) -> Result<(Vec<Claimed>, u64), StoreError> {
        let tenant = campaign.tenant_id.as_str();
        let name = campaign.name.as_str();
        let backend = self.state.store.backend();
        let mut tx = self.state.store.write(&Scope::tenant(tenant)).await?;
        if !rows::lock_campaign(&mut tx, backend, tenant, name).await? {
            tx.commit().await?;
            return Ok((Vec::new(), 0));
        }
        let skipped = rows::skip_do_not_call(&mut tx, tenant, name, now).await?;
        let active = rows::count_active(&mut tx, tenant, name).await?;
        let (started_in_window, last_start) =
            rows::started_since(&mut tx, tenant, name, now - RATE_WINDOW_MS + 1).await?;
        let recent = Recent {
            active,
            started_in_window,
            last_start,
        };
        let free = pacing::free_slots(&spec.pacing, recent, now);
        let mut claimed = Vec::new();
        if free > 0 {
            for due in rows::due_contacts(&mut tx, backend, tenant, name, now, free).await? {
                let attempt = self.new_attempt(campaign, &due, now);
                if rows::start_attempt(&mut tx, &attempt).await? {
                    calls::insert_or_get(&mut tx, &call_record(&attempt, number, &due.phone))
                        .await?;
                    claimed.push(Claimed {
                        attempt,
                        phone: due.phone,
                    });
                }
            }
        }
        rows::set_phase(
            &mut tx,
            tenant,
            name,
            CampaignPhase::Running.as_str(),
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok((claimed, skipped))
    }

    fn new_attempt(&self, campaign: &CampaignRow, due: &DueContact, now: i64) -> NewAttempt {
        NewAttempt {
            id: new_id(),
            tenant_id: campaign.tenant_id.clone(),
            campaign: campaign.name.clone(),
            contact_id: due.id.clone(),
            seq: due.dial_seq + 1,
            call_id: new_id(),
            dialer: self.instance.clone(),
            created_at: now,
        }
    }

    /// Step 4: admits and places one claimed call; `true` when the carrier accepted it.
    async fn place(
        &self,
        claimed: Claimed,
        tenant: &TenantRow,
        number: &NumberRow,
    ) -> Result<bool, StoreError> {
        let attempt = &claimed.attempt;
        let event_id = format!("call:attempt:{}", attempt.id);
        if usage::admit_call(
            &self.state.store,
            &self.state.plan_limits,
            &tenant.id,
            &tenant.plan,
            &event_id,
        )
        .await?
            == Admission::OverLimit
        {
            self.end_unplaced(attempt, "plan-limit", false).await?;
            return Ok(false);
        }
        let carrier = match carrier::carrier_for(&self.state, number).await {
            Ok(carrier) => carrier,
            Err(error) => {
                tracing::warn!(%error, campaign = %attempt.campaign, "cannot place campaign calls");
                self.end_unplaced(attempt, "carrier-unavailable", false)
                    .await?;
                return Ok(false);
            }
        };
        let request = carrier::outbound_call(
            self.state.config.public_base(),
            number,
            &claimed.phone,
            &attempt.id,
        );
        match carrier.place_call(&request).await {
            Ok(placed) => {
                let mut tx = self
                    .state
                    .store
                    .write(&Scope::tenant(&attempt.tenant_id))
                    .await?;
                let now = self.clock.now_ms();
                rows::attempt_placed(&mut tx, &attempt.tenant_id, &attempt.id, &placed.id, now)
                    .await?;
                calls::set_carrier_id(
                    &mut tx,
                    &attempt.tenant_id,
                    &attempt.call_id,
                    &placed.id,
                    now_ms(),
                )
                .await?;
                tx.commit().await?;
                self.count("placed");
                Ok(true)
            }
            Err(error) => {
                let (outcome, counts) = match &error {
                    CarrierError::RateLimited { .. } => ("rate-limited", false),
                    // A timeout or 5xx may or may not have started the call: never redial.
                    CarrierError::Transient { .. } => ("unknown", true),
                    _ => ("failed", true),
                };
                tracing::warn!(%error, campaign = %attempt.campaign, outcome, "carrier did not place a campaign call");
                self.end_unplaced(attempt, outcome, counts).await?;
                Ok(false)
            }
        }
    }

    async fn end_unplaced(
        &self,
        attempt: &NewAttempt,
        outcome: &str,
        counts: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .state
            .store
            .write(&Scope::tenant(&attempt.tenant_id))
            .await?;
        let now = self.clock.now_ms();
        rows::end_attempt(
            &mut tx,
            &attempt.tenant_id,
            &attempt.id,
            outcome,
            counts,
            now,
        )
        .await?;
        calls::end_unconnected(
            &mut tx,
            &attempt.tenant_id,
            &attempt.call_id,
            outcome,
            now_ms(),
        )
        .await?;
        tx.commit().await?;
        self.count(outcome);
        Ok(())
    }

    fn count(&self, result: &str) {
        self.state
            .metrics
            .dialer_attempts
            .with_label_values(&[result])
            .inc();
    }
}

/// The contact's new state and next due time after an ended attempt.
fn verdict(
    policy: &switchboard_crds::campaign::RetryPolicy,
    ended: &EndedAttempt,
    now: i64,
) -> (&'static str, i64) {
    if ended.counts == 0 {
        return ("pending", now + NOT_PLACED_RETRY_MS);
    }
    match retry::next_step(
        policy,
        ended.attempts,
        Outcome::from_stored(&ended.outcome),
        now,
    ) {
        Next::RetryAt(at) => ("pending", at),
        Next::Done(done) => (done.state(), 0),
    }
}

/// The call record written with an attempt, before the carrier is called.
fn call_record(attempt: &NewAttempt, number: &NumberRow, to: &str) -> CallRow {
    let now = now_ms();
    CallRow {
        id: attempt.call_id.clone(),
        tenant_id: attempt.tenant_id.clone(),
        carrier: number.carrier.clone(),
        direction: "outbound".to_owned(),
        from_number: Some(number.e164.clone()),
        to_number: Some(to.to_owned()),
        status: CallStatus::Dialing.as_str().to_owned(),
        started_at: now,
        campaign: Some(attempt.campaign.clone()),
        contact: Some(attempt.contact_id.clone()),
        source: "carrier".to_owned(),
        updated_at: now,
        ..CallRow::default()
    }
}
