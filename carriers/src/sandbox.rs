//! The sandbox carrier: a real, documented [`Carrier`] for local use and tests, in the spirit
//! of Stripe's test mode.
//!
//! * **Numbers** come from the fictional range reserved for films and examples,
//!   `+1 555 0100` … `+1 555 0199` (written `+15550100` … `+15550199`; country `US`, area code
//!   `555`). A number is either available or owned by the sandbox account; ids look like
//!   `SB000001`. Buying records the idempotency tag and webhooks, exactly like a real carrier.
//! * **Inventory** (owned numbers, id counter, purchase count) lives in memory, or in a JSON
//!   file when opened with [`SandboxCarrier::open`]; every change rewrites the file atomically
//!   (write a temporary file in the same directory, then rename), so a crash never leaves a
//!   torn file. One process should own a file at a time.
//! * **Calls** are simulated: [`Carrier::place_call`] records the call (caller id must be an
//!   owned number, as at a real carrier) and counts concurrent calls, so a dialer test can
//!   assert its pacing through [`SandboxCarrier::max_concurrent_calls`]; the call stays active
//!   until [`Carrier::hang_up`] or [`SandboxCarrier::complete_call`].
//! * **Contacts**: by default nobody answers. [`SandboxCarrier::with_simulated_contacts`]
//!   has a silent contact pick up each call and hang up after a while;
//!   [`SandboxCarrier::with_callee`] hands each call to a [`Callee`] that takes part in it
//!   (the gateway's speaking callee fetches the answer URL and talks to the agent). Either
//!   way the sandbox then ends the call and posts a signed `completed` status callback.
//! * **Failures** can be switched on per operation ([`SandboxCarrier::fail`]) to exercise
//!   bad credentials, rate limiting, outages and refusals without a real carrier.
//! * **Webhooks** a simulator sends on the sandbox's behalf can be signed Twilio-style with
//!   [`SandboxCarrier::sign_webhook`], so the gateway verifies them exactly as Twilio's.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use switchboard_crds::CarrierKind;

use crate::signatures;
use crate::{
    AvailableNumber, Carrier, CarrierError, CarrierResult, NumberQuery, OutboundCall, OwnedNumber,
    PlacedCall, PurchaseRequest, WebhookConfig,
};

/// First number of the sandbox range (`+15550100`).
pub const FIRST_NUMBER: u32 = 5_550_100;
/// Last number of the sandbox range (`+15550199`).
pub const LAST_NUMBER: u32 = 5_550_199;
/// The area code the sandbox range lives in.
pub const AREA_CODE: &str = "555";

/// Whether `e164` lies in the sandbox range.
pub fn is_sandbox_number(e164: &str) -> bool {
    parse_sandbox_number(e164).is_some()
}

fn parse_sandbox_number(e164: &str) -> Option<u32> {
    let digits = e164.strip_prefix("+1")?;
    if digits.len() != 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    (FIRST_NUMBER..=LAST_NUMBER).contains(&n).then_some(n)
}

fn format_sandbox_number(n: u32) -> String {
    format!("+1{n}")
}

/// A sandbox operation that a failure can be attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SandboxOp {
    /// [`Carrier::search`].
    Search,
    /// [`Carrier::buy`].
    Buy,
    /// [`Carrier::configure_webhooks`].
    Configure,
    /// [`Carrier::get`], [`Carrier::find_by_tag`], [`Carrier::find_by_e164`].
    Lookup,
    /// [`Carrier::release`].
    Release,
    /// [`Carrier::place_call`].
    PlaceCall,
    /// [`Carrier::hang_up`].
    HangUp,
}

/// A failure the sandbox can be told to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxFailure {
    /// As if the credentials were wrong.
    BadCredentials,
    /// As if nothing matched.
    NothingAvailable,
    /// As if rate limited, asking the caller to wait this long.
    RateLimited(Duration),
    /// As if the carrier were down.
    Transient,
    /// As if the carrier refused the request.
    Permanent,
}

impl SandboxFailure {
    fn to_error(self, op: SandboxOp) -> CarrierError {
        let message = format!("sandbox: injected failure on {op:?}");
        match self {
            Self::BadCredentials => CarrierError::BadCredentials { message },
            Self::NothingAvailable => CarrierError::NothingAvailable { message },
            Self::RateLimited(wait) => CarrierError::RateLimited {
                retry_after: Some(wait),
                message,
            },
            Self::Transient => CarrierError::Transient { message },
            Self::Permanent => CarrierError::Permanent {
                status: Some(400),
                code: Some("sandbox".to_owned()),
                message,
            },
        }
    }
}

/// One call the sandbox placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The sandbox call id (`SC000001`).
    pub id: String,
    /// Caller id.
    pub from: String,
    /// Destination.
    pub to: String,
    /// Answer URL the call was placed with.
    pub answer_url: String,
    /// When the call was placed.
    pub placed_at: SystemTime,
    /// When the call ended, once it has.
    pub ended_at: Option<SystemTime>,
    /// How many calls (this one included) were active right after it was placed.
    pub concurrent_at_start: usize,
}

/// What survives a restart when the sandbox is backed by a file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Inventory {
    /// Owned numbers by id.
    numbers: BTreeMap<String, OwnedNumber>,
    /// Last id handed out.
    last_id: u64,
    /// Successful purchases ever made.
    purchases: u64,
    /// Successful releases ever made.
    releases: u64,
}

#[derive(Debug, Default)]
struct State {
    inventory: Inventory,
    /// Injected failures: the failure and how many more times (None = until cleared).
    failures: HashMap<SandboxOp, (SandboxFailure, Option<u32>)>,
    calls: Vec<CallRecord>,
    max_concurrent: usize,
    /// Calls still placed normally before [`Carrier::place_call`] starts hanging.
    hang_after: Option<usize>,
}

impl State {
    fn active_calls(&self) -> usize {
        self.calls.iter().filter(|c| c.ended_at.is_none()).count()
    }

    fn find(&self, pred: impl Fn(&OwnedNumber) -> bool) -> Option<OwnedNumber> {
        self.inventory.numbers.values().find(|n| pred(n)).cloned()
    }
}

/// The sandbox carrier. Clones share one account (inventory, calls, failures).
#[derive(Clone, Debug)]
pub struct SandboxCarrier {
    state: Arc<Mutex<State>>,
    file: Option<PathBuf>,
    signing_key: Arc<str>,
    simulated_contacts: Option<SimulatedContacts>,
    callee: Option<Arc<dyn Callee>>,
}

/// Someone who picks up the sandbox's outbound calls and takes part in them (see
/// [`SandboxCarrier::with_callee`]). The carrier itself stays free of media: a callee that
/// talks brings its own (the gateway's speaking callee uses the runtime's codec and voice).
pub trait Callee: std::fmt::Debug + Send + Sync {
    /// Plays the person `call` reached; the future ends when they hang up.
    fn pick_up(&self, call: PickedUpCall) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// A sandbox call a [`Callee`] picked up.
#[derive(Clone, Debug)]
pub struct PickedUpCall {
    /// The sandbox call id (`SC000001`), Twilio's `CallSid`.
    pub call_id: String,
    /// The call as placed (caller id, destination, answer URL).
    pub call: OutboundCall,
    /// The account that placed it, to sign the callee's webhooks
    /// ([`SandboxCarrier::sign_webhook`]).
    pub sandbox: SandboxCarrier,
}

/// How the sandbox plays the people its outbound calls reach (see
/// [`SandboxCarrier::with_simulated_contacts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimulatedContacts {
    /// How long each simulated contact stays on the line before hanging up.
    pub talk: Duration,
}

/// Key used to sign simulated webhooks unless another is chosen.
pub const DEFAULT_SIGNING_KEY: &str = "sandbox-auth-token";

impl Default for SandboxCarrier {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl SandboxCarrier {
    /// A sandbox account whose inventory lives only in memory.
    pub fn in_memory() -> Self {
        Self {
            state: Arc::default(),
            file: None,
            signing_key: Arc::from(DEFAULT_SIGNING_KEY),
            simulated_contacts: None,
            callee: None,
        }
    }

    /// A sandbox account whose inventory is kept in the JSON file `path` (created on the
    /// first change when missing).
    pub fn open(path: impl Into<PathBuf>) -> CarrierResult<Self> {
        let path = path.into();
        let inventory = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| CarrierError::Permanent {
                status: None,
                code: None,
                message: format!("sandbox inventory {} is not valid: {e}", path.display()),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Inventory::default(),
            Err(e) => return Err(storage_error(&path, &e)),
        };
        Ok(Self {
            state: Arc::new(Mutex::new(State {
                inventory,
                ..State::default()
            })),
            file: Some(path),
            signing_key: Arc::from(DEFAULT_SIGNING_KEY),
            simulated_contacts: None,
            callee: None,
        })
    }

    /// The same account signing simulated webhooks with `key` (the gateway's "auth token"
    /// for the sandbox).
    pub fn with_signing_key(mut self, key: impl AsRef<str>) -> Self {
        self.signing_key = Arc::from(key.as_ref());
        self
    }

    /// The same account answering its outbound calls itself: each call is picked up by a
    /// simulated contact who stays silent for `talk` and hangs up, after which the sandbox
    /// ends the call and posts a signed `completed` status callback (Twilio's form fields) to
    /// the call's `status_callback_url`. No media flows. Standalone mode uses it so campaigns
    /// run to the end on a laptop; without it calls stay up until hung up or completed by hand.
    pub fn with_simulated_contacts(mut self, contacts: SimulatedContacts) -> Self {
        self.simulated_contacts = Some(contacts);
        self
    }

    /// The same account handing each outbound call to `callee`, who picks up and takes part
    /// in it; once the callee hangs up the sandbox ends the call and posts a signed
    /// `completed` status callback with the call's duration. Wins over
    /// [`Self::with_simulated_contacts`].
    pub fn with_callee(mut self, callee: Arc<dyn Callee>) -> Self {
        self.callee = Some(callee);
        self
    }

    /// Plays the contact of a placed call (see [`Self::with_simulated_contacts`] and
    /// [`Self::with_callee`]); nothing when neither is set.
    fn simulate_contact(&self, placed: &PlacedCall, call: &OutboundCall) {
        if self.callee.is_none() && self.simulated_contacts.is_none() {
            return;
        }
        let sandbox = self.clone();
        let picked = PickedUpCall {
            call_id: placed.id.clone(),
            call: call.clone(),
            sandbox: self.clone(),
        };
        tokio::spawn(async move {
            let started = Instant::now();
            let talked = match (&sandbox.callee, sandbox.simulated_contacts) {
                (Some(callee), _) => {
                    callee.pick_up(picked.clone()).await;
                    started.elapsed()
                }
                (None, Some(contacts)) => {
                    tokio::time::sleep(contacts.talk).await;
                    contacts.talk
                }
                (None, None) => return,
            };
            if !sandbox.complete_call(&picked.call_id) {
                return; // hung up meanwhile
            }
            let Some(url) = picked.call.status_callback_url.clone() else {
                return;
            };
            let params = vec![
                ("CallSid".to_owned(), picked.call_id.clone()),
                ("CallStatus".to_owned(), "completed".to_owned()),
                ("CallDuration".to_owned(), talked.as_secs().to_string()),
                ("Direction".to_owned(), "outbound-api".to_owned()),
                ("From".to_owned(), picked.call.from.clone()),
                ("To".to_owned(), picked.call.to.clone()),
            ];
            let signature = sandbox.sign_webhook(&url, &params);
            let sent = reqwest::Client::new()
                .post(&url)
                .header(signatures::TWILIO_SIGNATURE_HEADER, signature)
                .form(&params)
                .send()
                .await;
            if let Err(error) = sent {
                tracing::warn!(error = %error.without_url(), "sandbox could not post a status callback");
            }
        });
    }

    /// The `X-Twilio-Signature` value for a simulated form webhook to `url` with `params`.
    pub fn sign_webhook(&self, url: &str, params: &[(String, String)]) -> String {
        signatures::twilio_signature(&self.signing_key, url, params)
    }

    /// Makes `op` fail with `failure`, `times` times (None: until [`Self::clear_failures`]).
    pub fn fail(&self, op: SandboxOp, failure: SandboxFailure, times: Option<u32>) {
        self.lock().failures.insert(op, (failure, times));
    }

    /// Removes every injected failure.
    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// Numbers the account owns.
    pub fn owned_numbers(&self) -> Vec<OwnedNumber> {
        self.lock().inventory.numbers.values().cloned().collect()
    }

    /// Successful purchases ever made by this account.
    pub fn purchase_count(&self) -> u64 {
        self.lock().inventory.purchases
    }

    /// Successful releases ever made by this account.
    pub fn release_count(&self) -> u64 {
        self.lock().inventory.releases
    }

    /// Places `successes` more calls normally; every later [`Carrier::place_call`] places
    /// and records its call but never returns (as a carrier whose answer is lost on the way
    /// back), until [`SandboxCarrier::stop_hanging`]. Tests use it to kill a dialer in the
    /// middle of a batch, in the one spot where the dialer cannot know the phone rang.
    pub fn hang_calls_after(&self, successes: usize) {
        self.lock().hang_after = Some(successes);
    }

    /// Places calls normally again.
    pub fn stop_hanging(&self) {
        self.lock().hang_after = None;
    }

    /// Every call placed, oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().calls.clone()
    }

    /// Calls placed and not yet ended.
    pub fn active_calls(&self) -> usize {
        self.lock().active_calls()
    }

    /// The most calls that were ever active at once.
    pub fn max_concurrent_calls(&self) -> usize {
        self.lock().max_concurrent
    }

    /// Ends a call as if the callee hung up. Returns false for an unknown or ended call.
    pub fn complete_call(&self, call_id: &str) -> bool {
        let mut state = self.lock();
        match state
            .calls
            .iter_mut()
            .find(|c| c.id == call_id && c.ended_at.is_none())
        {
            Some(call) => {
                call.ended_at = Some(SystemTime::now());
                true
            }
            None => false,
        }
    }

    /// Puts back a number this account is known to own (from a durable record elsewhere,
    /// e.g. the cluster's PhoneNumber objects after an operator restart lost an in-memory
    /// inventory). Not a purchase: the purchase count is unchanged. Restoring a number that
    /// is already present is a no-op; one whose E.164 is held under another id is refused.
    pub fn restore(&self, number: OwnedNumber) -> CarrierResult<()> {
        let mut state = self.lock();
        let mut next = state.inventory.clone();
        if next.numbers.contains_key(&number.id) {
            return Ok(());
        }
        if !is_sandbox_number(&number.e164) {
            return Err(CarrierError::NothingAvailable {
                message: format!("sandbox: {} is outside +15550100..+15550199", number.e164),
            });
        }
        if next.numbers.values().any(|n| n.e164 == number.e164) {
            return Err(CarrierError::Permanent {
                status: Some(409),
                code: Some("conflict".to_owned()),
                message: format!("sandbox: {} is held under another id", number.e164),
            });
        }
        // Keep ids unique: later purchases continue after the highest restored id.
        if let Some(n) = number
            .id
            .strip_prefix("SB")
            .and_then(|n| n.parse::<u64>().ok())
        {
            next.last_id = next.last_id.max(n);
        }
        next.numbers.insert(number.id.clone(), number);
        self.persist(&next)?;
        state.inventory = next;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than losing the whole sandbox, so recover the guard.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records an outbound call; also says whether this request must hang (see
    /// [`SandboxCarrier::hang_calls_after`]).
    fn record_call(&self, call: &OutboundCall) -> CarrierResult<(PlacedCall, bool)> {
        let mut state = self.lock();
        Self::injected(&mut state, SandboxOp::PlaceCall)?;
        if state.find(|n| n.e164 == call.from).is_none() {
            return Err(CarrierError::Permanent {
                status: Some(400),
                code: Some("caller_id".to_owned()),
                message: format!(
                    "sandbox: caller id {} is not a number of this account",
                    call.from
                ),
            });
        }
        let id = format!("SC{:06}", state.calls.len() + 1);
        let concurrent = state.active_calls() + 1;
        state.max_concurrent = state.max_concurrent.max(concurrent);
        state.calls.push(CallRecord {
            id: id.clone(),
            from: call.from.clone(),
            to: call.to.clone(),
            answer_url: call.answer_url.clone(),
            placed_at: SystemTime::now(),
            ended_at: None,
            concurrent_at_start: concurrent,
        });
        let hang = match state.hang_after.as_mut() {
            Some(0) => true,
            Some(left) => {
                *left -= 1;
                false
            }
            None => false,
        };
        Ok((
            PlacedCall {
                id,
                status: "queued".to_owned(),
            },
            hang,
        ))
    }

    /// Fails with the injected failure for `op`, if one is armed.
    fn injected(state: &mut State, op: SandboxOp) -> CarrierResult<()> {
        let Some((failure, remaining)) = state.failures.get_mut(&op) else {
            return Ok(());
        };
        let failure = *failure;
        match remaining {
            Some(0) => {
                state.failures.remove(&op);
                return Ok(());
            }
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    state.failures.remove(&op);
                }
            }
            None => {}
        }
        Err(failure.to_error(op))
    }

    /// Writes the inventory to the backing file, if any, atomically.
    fn persist(&self, inventory: &Inventory) -> CarrierResult<()> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        let bytes = serde_json::to_vec_pretty(inventory).map_err(|e| CarrierError::Permanent {
            status: None,
            code: None,
            message: format!("cannot serialise sandbox inventory: {e}"),
        })?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| storage_error(path, &e))?;
        tmp.write_all(&bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| storage_error(path, &e))?;
        tmp.persist(path)
            .map_err(|e| storage_error(path, &e.error))?;
        Ok(())
    }

    /// Applies `change` to the inventory and persists it; on a write failure the in-memory
    /// inventory is left unchanged, so memory and file never disagree.
    fn mutate<T>(
        &self,
        op: SandboxOp,
        change: impl FnOnce(&mut Inventory) -> CarrierResult<T>,
    ) -> CarrierResult<T> {
        let mut state = self.lock();
        Self::injected(&mut state, op)?;
        let mut next = state.inventory.clone();
        let value = change(&mut next)?;
        self.persist(&next)?;
        state.inventory = next;
        Ok(value)
    }

    fn lookup(&self, pred: impl Fn(&OwnedNumber) -> bool) -> CarrierResult<Option<OwnedNumber>> {
        let mut state = self.lock();
        Self::injected(&mut state, SandboxOp::Lookup)?;
        Ok(state.find(pred))
    }
}

fn storage_error(path: &Path, err: &std::io::Error) -> CarrierError {
    CarrierError::Transient {
        message: format!("sandbox inventory {}: {err}", path.display()),
    }
}

fn not_owned(id: &str) -> CarrierError {
    CarrierError::Permanent {
        status: Some(404),
        code: Some("not_found".to_owned()),
        message: format!("sandbox: no number {id} on this account"),
    }
}

impl Carrier for SandboxCarrier {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Sandbox
    }

    async fn search(&self, query: &NumberQuery) -> CarrierResult<Vec<AvailableNumber>> {
        let mut state = self.lock();
        Self::injected(&mut state, SandboxOp::Search)?;
        let area_ok = query.area_code.as_deref().is_none_or(|a| a == AREA_CODE);
        if query.country != "US" || !area_ok {
            return Ok(Vec::new());
        }
        let owned: Vec<&str> = state
            .inventory
            .numbers
            .values()
            .map(|n| n.e164.as_str())
            .collect();
        Ok((FIRST_NUMBER..=LAST_NUMBER)
            .map(format_sandbox_number)
            .filter(|e164| !owned.contains(&e164.as_str()))
            .take(query.limit.max(1) as usize)
            .map(|e164| AvailableNumber {
                e164,
                region: Some("Sandbox".to_owned()),
                locality: Some("Fictional".to_owned()),
            })
            .collect())
    }

    async fn buy(&self, request: &PurchaseRequest) -> CarrierResult<OwnedNumber> {
        self.mutate(SandboxOp::Buy, |inv| {
            if !is_sandbox_number(&request.e164) {
                return Err(CarrierError::NothingAvailable {
                    message: format!("sandbox: {} is outside +15550100..+15550199", request.e164),
                });
            }
            if inv.numbers.values().any(|n| n.e164 == request.e164) {
                return Err(CarrierError::NothingAvailable {
                    message: format!("sandbox: {} is already owned", request.e164),
                });
            }
            inv.last_id += 1;
            inv.purchases += 1;
            let number = OwnedNumber {
                id: format!("SB{:06}", inv.last_id),
                e164: request.e164.clone(),
                tag: Some(request.tag.clone()),
                voice_url: Some(request.webhooks.voice_url.clone()),
                status_callback_url: request.webhooks.status_callback_url.clone(),
            };
            inv.numbers.insert(number.id.clone(), number.clone());
            Ok(number)
        })
    }

    async fn configure_webhooks(
        &self,
        id: &str,
        webhooks: &WebhookConfig,
    ) -> CarrierResult<OwnedNumber> {
        self.mutate(SandboxOp::Configure, |inv| {
            let number = inv.numbers.get_mut(id).ok_or_else(|| not_owned(id))?;
            number.voice_url = Some(webhooks.voice_url.clone());
            number.status_callback_url = webhooks.status_callback_url.clone();
            Ok(number.clone())
        })
    }

    async fn get(&self, id: &str) -> CarrierResult<Option<OwnedNumber>> {
        self.lookup(|n| n.id == id)
    }

    async fn find_by_tag(&self, tag: &str) -> CarrierResult<Option<OwnedNumber>> {
        self.lookup(|n| n.tag.as_deref() == Some(tag))
    }

    async fn find_by_e164(&self, e164: &str) -> CarrierResult<Option<OwnedNumber>> {
        self.lookup(|n| n.e164 == e164)
    }

    async fn release(&self, id: &str) -> CarrierResult<()> {
        self.mutate(SandboxOp::Release, |inv| {
            if inv.numbers.remove(id).is_some() {
                inv.releases += 1;
            }
            Ok(())
        })
    }

    async fn place_call(&self, call: &OutboundCall) -> CarrierResult<PlacedCall> {
        let (placed, hang) = self.record_call(call)?;
        self.simulate_contact(&placed, call);
        if hang {
            // The call is placed (and rings); only the answer to the request is lost.
            std::future::pending::<()>().await;
        }
        Ok(placed)
    }

    async fn hang_up(&self, call_id: &str) -> CarrierResult<()> {
        {
            let mut state = self.lock();
            Self::injected(&mut state, SandboxOp::HangUp)?;
            if !state.calls.iter().any(|c| c.id == call_id) {
                return Err(CarrierError::Permanent {
                    status: Some(404),
                    code: Some("not_found".to_owned()),
                    message: format!("sandbox: no call {call_id}"),
                });
            }
        }
        // Hanging up an ended call succeeds, like at the real carriers.
        self.complete_call(call_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_exactly_one_hundred_fictional_numbers() {
        assert!(is_sandbox_number("+15550100"));
        assert!(is_sandbox_number("+15550199"));
        assert!(!is_sandbox_number("+15550200"));
        assert!(!is_sandbox_number("+15550099"));
        assert!(!is_sandbox_number("+445550100"));
        assert!(!is_sandbox_number("+1555010x"));
        assert_eq!((FIRST_NUMBER..=LAST_NUMBER).count(), 100);
    }
}
