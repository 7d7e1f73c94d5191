//! A Campaign's validation and status as pure functions: spec and observations in, verdict or
//! status out. The controller only gathers the observations and talks to the gateway.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use switchboard_crds::campaign::{
    CONDITION_DIALING, CONDITION_READY, CONDITION_VALID, KeyReference,
};
use switchboard_crds::conditions::{find_condition, is_condition_true};
use switchboard_crds::internal_api::{Progress, RegistrationResult};
use switchboard_crds::{
    Campaign, CampaignPhase, CampaignSpec, CampaignStatus, ConditionStatus, PhoneNumber,
    PlanOverrides, Tenant, set_condition,
};

/// Key of the agent ConfigMap holding the namespace's campaign scripts (the runtime reads
/// `campaigns.json`: campaign name → agent override and survey questions).
pub const CAMPAIGN_SCRIPTS_KEY: &str = "campaigns.json";

/// Field manager of the campaign scripts: the Tenant controller applies the same ConfigMap
/// (`agent.json`) as `switchboard-operator`, so each manager owns its own key and neither
/// apply removes the other's.
pub const SCRIPTS_FIELD_MANAGER: &str = "switchboard-operator-campaigns";

/// The agent ConfigMap's `campaigns.json` for the namespace's campaigns that are not being
/// deleted and carry an agent override. Pure: the campaign list in, the partial object out.
pub fn campaign_scripts(
    namespace: &str,
    campaigns: &[Campaign],
) -> Result<ConfigMap, serde_json::Error> {
    let scripts: std::collections::BTreeMap<String, &switchboard_crds::campaign::CampaignAgent> =
        campaigns
            .iter()
            .filter(|c| c.metadata.deletion_timestamp.is_none())
            .filter_map(|c| Some((c.metadata.name.clone()?, c.spec.agent.as_ref()?)))
            .collect();
    Ok(ConfigMap {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(crate::builders::runtime::AGENT_CONFIG_MAP.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        data: Some(std::collections::BTreeMap::from([(
            CAMPAIGN_SCRIPTS_KEY.to_owned(),
            serde_json::to_string_pretty(&scripts)?,
        )])),
        ..ConfigMap::default()
    })
}

/// Why a Campaign cannot dial. Each is the `reason` of `Valid=False`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidReason {
    /// The namespace is not a tenant namespace, or its Tenant does not exist.
    TenantNotFound,
    /// The tenant is suspended.
    TenantSuspended,
    /// The tenant's plan (with overrides) does not include campaigns.
    PlanDisallowsCampaigns,
    /// The from-number PhoneNumber is missing, not Ready, or has no E.164 number yet.
    NumberNotReady,
    /// The calling window or time zone does not parse.
    InvalidSchedule,
    /// Pacing is out of range or above what the tenant's runtime can take.
    InvalidPacing,
    /// The contact list's ConfigMap/Secret, key or content is missing.
    ContactsMissing,
}

impl InvalidReason {
    /// The condition reason (`UpperCamelCase`, as API conventions require).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TenantNotFound => "TenantNotFound",
            Self::TenantSuspended => "TenantSuspended",
            Self::PlanDisallowsCampaigns => "PlanDisallowsCampaigns",
            Self::NumberNotReady => "NumberNotReady",
            Self::InvalidSchedule => "InvalidSchedule",
            Self::InvalidPacing => "InvalidPacing",
            Self::ContactsMissing => "ContactsMissing",
        }
    }

    /// The phase an invalid campaign shows. Waiting for something that usually arrives by itself
    /// (a number being bought, a ConfigMap in a later GitOps sync wave) is `Pending`; a
    /// suspended tenant is `Paused`; everything that needs a human is `Failed`.
    pub fn phase(self) -> CampaignPhase {
        match self {
            Self::NumberNotReady | Self::ContactsMissing => CampaignPhase::Pending,
            Self::TenantSuspended => CampaignPhase::Paused,
            Self::TenantNotFound
            | Self::PlanDisallowsCampaigns
            | Self::InvalidSchedule
            | Self::InvalidPacing => CampaignPhase::Failed,
        }
    }
}

/// A failed validation: the reason and a message for humans.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// Machine-readable reason.
    pub reason: InvalidReason,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Invalid {
    fn new(reason: InvalidReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// What the controller learnt about the owning Tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantFacts {
    /// The Tenant's name (the `{tenant}` of the gateway's paths).
    pub name: String,
    /// `spec.suspended`.
    pub suspended: bool,
    /// `spec.effective_limits(platform).campaigns`.
    pub campaigns_allowed: bool,
    /// Calls the runtime takes at once: `maxConcurrentCalls × replicas`.
    pub call_capacity: i64,
}

impl TenantFacts {
    /// The facts of a stored Tenant, its limits under the platform's plan overrides.
    pub fn of(tenant: &Tenant, platform: &PlanOverrides) -> Self {
        let runtime = &tenant.spec.runtime;
        Self {
            name: tenant.metadata.name.clone().unwrap_or_default(),
            suspended: tenant.spec.suspended,
            campaigns_allowed: tenant.spec.effective_limits(platform).campaigns,
            call_capacity: i64::from(runtime.max_concurrent_calls) * i64::from(runtime.replicas),
        }
    }
}

/// What the controller learnt about the from-number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberFacts {
    /// `Ready=True` in the PhoneNumber's status.
    pub ready: bool,
    /// `status.e164`.
    pub e164: Option<String>,
}

impl NumberFacts {
    /// The facts of a stored PhoneNumber.
    pub fn of(number: &PhoneNumber) -> Self {
        let status = number.status.clone().unwrap_or_default();
        Self {
            ready: is_condition_true(
                &status.conditions,
                switchboard_crds::phone_number::CONDITION_READY,
            ),
            e164: status.e164.filter(|n| !n.is_empty()),
        }
    }
}

/// Where the contacts come from, as read from the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContactsFacts {
    /// Uploaded through the gateway's API: nothing to read here.
    Uploaded,
    /// The CSV text read from the ConfigMap or Secret key.
    Csv(String),
    /// The ConfigMap/Secret or key is missing, or not text; the message says which.
    Missing(String),
}

/// Everything validation needs besides the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The owning Tenant; `None` when it does not exist.
    pub tenant: Option<TenantFacts>,
    /// The from-number; `None` when no such PhoneNumber exists in the namespace.
    pub number: Option<NumberFacts>,
    /// The contacts.
    pub contacts: ContactsFacts,
}

/// What a valid campaign is registered with: the resolved number and contacts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validated {
    /// The owning tenant's name.
    pub tenant: String,
    /// The caller ID, E.164.
    pub from_number: String,
    /// CSV text, `None` for uploaded contacts.
    pub contacts_csv: Option<String>,
}

/// The CSV under `reference.key` of a ConfigMap (`data`, or UTF-8 `binaryData`).
pub fn config_map_contacts(config_map: &ConfigMap, reference: &KeyReference) -> ContactsFacts {
    let key = &reference.key;
    if let Some(text) = config_map.data.as_ref().and_then(|d| d.get(key)) {
        return ContactsFacts::Csv(text.clone());
    }
    match config_map.binary_data.as_ref().and_then(|d| d.get(key)) {
        Some(bytes) => utf8_contacts(&bytes.0, "ConfigMap", reference),
        None => ContactsFacts::Missing(format!("ConfigMap {} has no key {key}", reference.name)),
    }
}

/// The CSV under `reference.key` of a Secret.
pub fn secret_contacts(secret: &Secret, reference: &KeyReference) -> ContactsFacts {
    match secret.data.as_ref().and_then(|d| d.get(&reference.key)) {
        Some(bytes) => utf8_contacts(&bytes.0, "Secret", reference),
        None => ContactsFacts::Missing(format!(
            "Secret {} has no key {}",
            reference.name, reference.key
        )),
    }
}

fn utf8_contacts(bytes: &[u8], kind: &str, reference: &KeyReference) -> ContactsFacts {
    match std::str::from_utf8(bytes) {
        Ok(text) => ContactsFacts::Csv(text.to_owned()),
        Err(_) => ContactsFacts::Missing(format!(
            "{kind} {} key {} is not UTF-8 text",
            reference.name, reference.key
        )),
    }
}

/// Checks a campaign against its tenant, number, schedule, pacing and contacts, in the order
/// a human would fix them: the first problem found is the reason.
pub fn validate(spec: &CampaignSpec, observed: &Observed) -> Result<Validated, Invalid> {
    let tenant = check_tenant(observed.tenant.as_ref())?;
    let from_number = check_number(&spec.from_number, observed.number.as_ref())?;
    check_schedule(spec)?;
    check_pacing(spec, tenant.call_capacity)?;
    let contacts_csv = check_contacts(&observed.contacts)?;
    Ok(Validated {
        tenant: tenant.name.clone(),
        from_number,
        contacts_csv,
    })
}

fn check_tenant(tenant: Option<&TenantFacts>) -> Result<&TenantFacts, Invalid> {
    let tenant = tenant.ok_or_else(|| {
        Invalid::new(
            InvalidReason::TenantNotFound,
            "this namespace belongs to no existing Tenant",
        )
    })?;
    if tenant.suspended {
        return Err(Invalid::new(
            InvalidReason::TenantSuspended,
            format!("tenant {} is suspended: no calls are placed", tenant.name),
        ));
    }
    if !tenant.campaigns_allowed {
        return Err(Invalid::new(
            InvalidReason::PlanDisallowsCampaigns,
            format!(
                "the plan of tenant {} does not include campaigns: upgrade the plan",
                tenant.name
            ),
        ));
    }
    Ok(tenant)
}

fn check_number(name: &str, number: Option<&NumberFacts>) -> Result<String, Invalid> {
    let number = number.ok_or_else(|| {
        Invalid::new(
            InvalidReason::NumberNotReady,
            format!("PhoneNumber {name} does not exist in this namespace"),
        )
    })?;
    match (&number.e164, number.ready) {
        (Some(e164), true) => Ok(e164.clone()),
        _ => Err(Invalid::new(
            InvalidReason::NumberNotReady,
            format!("PhoneNumber {name} is not Ready yet"),
        )),
    }
}

/// The schedule rules shared with the gateway (`switchboard_crds::schedule`): `HH:MM` bounds
/// that differ and a known IANA time zone.
fn check_schedule(spec: &CampaignSpec) -> Result<(), Invalid> {
    spec.schedule
        .validate()
        .map(drop)
        .map_err(|e| Invalid::new(InvalidReason::InvalidSchedule, e.to_string()))
}

/// The pacing ranges shared with the gateway, then what this tenant's runtime can take.
fn check_pacing(spec: &CampaignSpec, capacity: i64) -> Result<(), Invalid> {
    let pacing = &spec.pacing;
    pacing
        .validate()
        .map_err(|e| Invalid::new(InvalidReason::InvalidPacing, e.to_string()))?;
    if i64::from(pacing.max_concurrent) > capacity {
        return Err(Invalid::new(
            InvalidReason::InvalidPacing,
            format!(
                "pacing.maxConcurrent {} exceeds the tenant runtime's capacity of {capacity} calls (maxConcurrentCalls × replicas)",
                pacing.max_concurrent
            ),
        ));
    }
    Ok(())
}

fn check_contacts(contacts: &ContactsFacts) -> Result<Option<String>, Invalid> {
    match contacts {
        ContactsFacts::Uploaded => Ok(None),
        ContactsFacts::Missing(message) => Err(Invalid::new(
            InvalidReason::ContactsMissing,
            message.clone(),
        )),
        ContactsFacts::Csv(csv) => {
            check_csv_shape(csv).map_err(|m| Invalid::new(InvalidReason::ContactsMissing, m))?;
            Ok(Some(csv.clone()))
        }
    }
}

/// A cheap early check of the CSV: a header with a `phone` column and at least one row. The
/// gateway validates every row (E.164, duplicates) and reports per-row errors.
fn check_csv_shape(csv: &str) -> Result<(), String> {
    let mut lines = csv
        .trim_start_matches('\u{feff}')
        .lines()
        .filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or("the contact CSV is empty")?;
    let has_phone = header
        .split(',')
        .any(|c| c.trim().trim_matches('"').eq_ignore_ascii_case("phone"));
    if !has_phone {
        return Err("the contact CSV's header has no phone column".into());
    }
    if lines.next().is_none() {
        return Err("the contact CSV has a header but no contacts".into());
    }
    Ok(())
}

/// "NN%": contacts with a final outcome (completed, failed, no answer) out of the total,
/// rounded down so 100% means every contact is done.
pub fn progress_percent(progress: &Progress) -> String {
    if progress.total <= 0 {
        return "0%".into();
    }
    let finished =
        (progress.completed + progress.failed + progress.no_answer).clamp(0, progress.total);
    format!("{}%", finished * 100 / progress.total)
}

fn base_status(campaign: &Campaign) -> CampaignStatus {
    let mut status = campaign.status.clone().unwrap_or_default();
    status.observed_generation = campaign.metadata.generation;
    status
}

fn set_valid(status: &mut CampaignStatus, generation: Option<i64>, now: Timestamp) {
    set_condition(
        &mut status.conditions,
        CONDITION_VALID,
        ConditionStatus::True,
        "Valid",
        "number ready, tenant allows campaigns, schedule and pacing are sane",
        generation,
        now,
    );
}

/// The status of a campaign that failed validation: `Valid=False` with the reason,
/// `Ready=False`, the phase the reason implies, and the last known counts kept.
pub fn invalid_status(campaign: &Campaign, invalid: &Invalid, now: Timestamp) -> CampaignStatus {
    let generation = campaign.metadata.generation;
    let mut status = base_status(campaign);
    status.phase = invalid.reason.phase();
    set_condition(
        &mut status.conditions,
        CONDITION_VALID,
        ConditionStatus::False,
        invalid.reason.as_str(),
        invalid.message.clone(),
        generation,
        now,
    );
    set_condition(
        &mut status.conditions,
        CONDITION_READY,
        ConditionStatus::False,
        "Invalid",
        "not dialing until the Valid condition is True",
        generation,
        now,
    );
    status
}

/// The status of a valid campaign registered with the gateway, mirroring its progress.
/// `registration` is the gateway's answer when this reconcile (re-)registered; otherwise the
/// previous Ready message, which carries the registration's contact counts, is kept.
pub fn registered_status(
    campaign: &Campaign,
    progress: &Progress,
    registration: Option<&RegistrationResult>,
    contacts_digest: Option<&str>,
    now: Timestamp,
) -> CampaignStatus {
    let generation = campaign.metadata.generation;
    let mut status = base_status(campaign);
    status.registered_contacts = contacts_digest.map(str::to_owned);
    let ready_message = match registration {
        Some(result) => registration_message(result),
        None => find_condition(&status.conditions, CONDITION_READY)
            .filter(|c| c.status == "True")
            .map(|c| c.message.clone())
            .unwrap_or_else(|| "registered with the gateway".into()),
    };
    status.phase = progress.phase;
    status.total = progress.total;
    status.pending = progress.pending;
    status.in_progress = progress.in_progress;
    status.completed = progress.completed;
    status.failed = progress.failed;
    status.no_answer = progress.no_answer;
    status.progress = Some(progress_percent(progress));
    set_valid(&mut status, generation, now);
    set_condition(
        &mut status.conditions,
        CONDITION_READY,
        ConditionStatus::True,
        "Registered",
        ready_message,
        generation,
        now,
    );
    let (dialing, reason, message) = dialing_condition(progress);
    set_condition(
        &mut status.conditions,
        CONDITION_DIALING,
        dialing,
        &reason,
        message,
        generation,
        now,
    );
    status
}

/// The `Dialing` condition from the dialer's phase and hold reason.
fn dialing_condition(progress: &Progress) -> (ConditionStatus, String, String) {
    let explain = |reason: &str| match reason {
        "OutsideWindow" => "outside the calling window; dialling resumes when it opens",
        "Suspended" => "spec.suspend is true",
        "TenantSuspended" => "the tenant is suspended",
        "PlanLimitReached" => "the plan's monthly call or minute limit is reached",
        "PlanForbidsCampaigns" => "the tenant's plan does not include campaigns",
        "FromNumberNotReady" => "the caller-id number is not routed at the gateway yet",
        "InvalidSchedule" => "the gateway cannot read the schedule",
        _ => "the gateway is not dialling",
    };
    match (progress.phase, progress.reason.as_deref()) {
        (CampaignPhase::Completed, _) => (
            ConditionStatus::False,
            "Completed".into(),
            "every contact is done".into(),
        ),
        (_, Some(reason)) => (
            ConditionStatus::False,
            reason.to_owned(),
            explain(reason).to_owned(),
        ),
        (CampaignPhase::Running, None) => (
            ConditionStatus::True,
            "Dialing".into(),
            "calls are being placed within the pacing limits".into(),
        ),
        (phase, None) => (
            ConditionStatus::False,
            format!("{phase:?}"),
            "the gateway has not started dialling".into(),
        ),
    }
}

/// How many rejected rows a message lists; the rest are counted.
const REJECTED_ROWS_SHOWN: usize = 3;

/// "registered with the gateway: 120 contacts accepted, 2 rejected (row 3: …; row 9: …)".
pub fn registration_message(result: &RegistrationResult) -> String {
    let mut message = format!(
        "registered with the gateway: {} contacts accepted",
        result.contacts
    );
    if !result.rejected.is_empty() {
        let shown: Vec<String> = result
            .rejected
            .iter()
            .take(REJECTED_ROWS_SHOWN)
            .map(|r| format!("row {}: {}", r.row, r.error))
            .collect();
        let more = result.rejected.len().saturating_sub(REJECTED_ROWS_SHOWN);
        message.push_str(&format!(
            ", {} rejected ({}{})",
            result.rejected.len(),
            shown.join("; "),
            if more > 0 {
                format!("; {more} more")
            } else {
                String::new()
            }
        ));
    }
    message
}

/// The status when the gateway could not be reached or refused the campaign: validation
/// passed (`Valid=True`), `Ready=False` with `reason`, phase and counts unchanged.
pub fn gateway_problem_status(
    campaign: &Campaign,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> CampaignStatus {
    let generation = campaign.metadata.generation;
    let mut status = base_status(campaign);
    set_valid(&mut status, generation, now);
    set_condition(
        &mut status.conditions,
        CONDITION_READY,
        ConditionStatus::False,
        reason,
        message,
        generation,
        now,
    );
    status
}

/// Whether the gateway already holds this generation: `Ready=True` was set for it.
pub fn is_registered(campaign: &Campaign, contacts_digest: Option<&str>) -> bool {
    let Some(status) = &campaign.status else {
        return false;
    };
    status.registered_contacts.as_deref() == contacts_digest
        && find_condition(&status.conditions, CONDITION_READY).is_some_and(|c| {
            c.status == "True"
                && c.reason == "Registered"
                && c.observed_generation == campaign.metadata.generation
        })
}

/// `sha256:<hex>` of a contacts CSV (`None` for uploaded contacts): the status remembers which
/// contacts were registered, so an edited ConfigMap or Secret is registered again.
pub fn contacts_digest(csv: Option<&str>) -> Option<String> {
    use sha2::Digest;
    csv.map(|csv| {
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(csv.as_bytes()))
        )
    })
}

/// Whether the stored status already says the campaign is invalid (so the gateway was told
/// to stop when it became invalid, and need not be told again).
pub fn was_invalid(campaign: &Campaign) -> bool {
    campaign
        .status
        .as_ref()
        .and_then(|s| find_condition(&s.conditions, CONDITION_VALID))
        .is_some_and(|c| c.status == "False")
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_crds::internal_api::RejectedRow;

    fn spec() -> CampaignSpec {
        serde_json::from_value(serde_json::json!({
            "fromNumber": "main",
            "contacts": {"uploaded": true},
            "schedule": {"timeZone": "America/New_York", "windowStart": "09:00", "windowEnd": "17:30"},
            "pacing": {"maxConcurrent": 5, "callsPerMinute": 2}
        }))
        .unwrap()
    }

    fn observed() -> Observed {
        Observed {
            tenant: Some(TenantFacts {
                name: "acme".into(),
                suspended: false,
                campaigns_allowed: true,
                call_capacity: 50,
            }),
            number: Some(NumberFacts {
                ready: true,
                e164: Some("+15550100".into()),
            }),
            contacts: ContactsFacts::Uploaded,
        }
    }

    fn reason(spec: &CampaignSpec, observed: &Observed) -> InvalidReason {
        validate(spec, observed).unwrap_err().reason
    }

    #[test]
    fn a_sane_campaign_validates_and_resolves_its_number() {
        let validated = validate(&spec(), &observed()).unwrap();
        assert_eq!(validated.tenant, "acme");
        assert_eq!(validated.from_number, "+15550100");
        assert_eq!(validated.contacts_csv, None);
    }

    #[test]
    fn calls_per_minute_below_max_concurrent_is_allowed() {
        // The issue says callsPerMinute >= maxConcurrent is not required (slow ramp-up).
        let mut s = spec();
        s.pacing.max_concurrent = 10;
        s.pacing.calls_per_minute = 1;
        assert!(validate(&s, &observed()).is_ok());
    }

    #[test]
    fn tenant_problems_come_first() {
        let mut o = observed();
        o.number = None;
        o.tenant.as_mut().unwrap().suspended = true;
        assert_eq!(reason(&spec(), &o), InvalidReason::TenantSuspended);
        o.tenant.as_mut().unwrap().suspended = false;
        o.tenant.as_mut().unwrap().campaigns_allowed = false;
        assert_eq!(reason(&spec(), &o), InvalidReason::PlanDisallowsCampaigns);
        o.tenant = None;
        assert_eq!(reason(&spec(), &o), InvalidReason::TenantNotFound);
    }

    #[test]
    fn a_number_must_be_ready_and_have_its_e164() {
        let mut o = observed();
        o.number = None;
        assert_eq!(reason(&spec(), &o), InvalidReason::NumberNotReady);
        o.number = Some(NumberFacts {
            ready: false,
            e164: Some("+15550100".into()),
        });
        assert_eq!(reason(&spec(), &o), InvalidReason::NumberNotReady);
        o.number = Some(NumberFacts {
            ready: true,
            e164: None,
        });
        let invalid = validate(&spec(), &o).unwrap_err();
        assert_eq!(invalid.reason, InvalidReason::NumberNotReady);
        assert!(invalid.message.contains("main"), "{}", invalid.message);
    }

    #[test]
    fn windows_and_zones_are_checked() {
        for (zone, start, end) in [
            ("Mars/Olympus_Mons", "09:00", "17:00"),
            ("", "09:00", "17:00"),
            ("UTC", "9:00", "17:00"),
            ("UTC", "24:00", "17:00"),
            ("UTC", "09:60", "17:00"),
            ("UTC", "10:00", "10:00"),
        ] {
            let mut s = spec();
            s.schedule.time_zone = zone.into();
            s.schedule.window_start = start.into();
            s.schedule.window_end = end.into();
            assert_eq!(
                reason(&s, &observed()),
                InvalidReason::InvalidSchedule,
                "{zone} {start}-{end}"
            );
        }
        let mut overnight = spec();
        overnight.schedule.time_zone = "Europe/Berlin".into();
        overnight.schedule.window_start = "22:00".into();
        overnight.schedule.window_end = "06:00".into();
        assert!(validate(&overnight, &observed()).is_ok(), "spans midnight");
    }

    #[test]
    fn pacing_is_bounded_by_the_runtime() {
        let mut o = observed();
        o.tenant.as_mut().unwrap().call_capacity = 4;
        let invalid = validate(&spec(), &o).unwrap_err();
        assert_eq!(invalid.reason, InvalidReason::InvalidPacing);
        assert!(
            invalid.message.contains("capacity of 4"),
            "{}",
            invalid.message
        );
        o.tenant.as_mut().unwrap().call_capacity = 5;
        assert!(validate(&spec(), &o).is_ok(), "equal to capacity is fine");
        let mut s = spec();
        s.pacing.calls_per_minute = 0;
        assert_eq!(reason(&s, &observed()), InvalidReason::InvalidPacing);
    }

    #[test]
    fn contacts_need_a_phone_column_and_rows() {
        let mut o = observed();
        o.contacts = ContactsFacts::Csv("phone,name\n+15550101,Ada\n".into());
        assert_eq!(
            validate(&spec(), &o).unwrap().contacts_csv.as_deref(),
            Some("phone,name\n+15550101,Ada\n")
        );
        o.contacts = ContactsFacts::Csv("\u{feff}\"Phone\"\r\n+15550101\r\n".into());
        assert!(validate(&spec(), &o).is_ok(), "BOM, quotes, CRLF");
        for bad in ["", "name\nAda\n", "phone,name\n"] {
            o.contacts = ContactsFacts::Csv(bad.into());
            assert_eq!(
                reason(&spec(), &o),
                InvalidReason::ContactsMissing,
                "{bad:?}"
            );
        }
        o.contacts = ContactsFacts::Missing("ConfigMap x not found".into());
        let invalid = validate(&spec(), &o).unwrap_err();
        assert_eq!(invalid.message, "ConfigMap x not found");
    }

    #[test]
    fn contacts_are_read_from_config_maps_and_secrets() {
        use k8s_openapi::ByteString;
        let reference = KeyReference {
            name: "list".into(),
            key: "contacts.csv".into(),
        };
        let mut config_map = ConfigMap::default();
        assert!(matches!(
            config_map_contacts(&config_map, &reference),
            ContactsFacts::Missing(m) if m == "ConfigMap list has no key contacts.csv"
        ));
        config_map.binary_data = Some(
            [(
                "contacts.csv".to_owned(),
                ByteString(b"phone\n+15550101\n".to_vec()),
            )]
            .into(),
        );
        assert_eq!(
            config_map_contacts(&config_map, &reference),
            ContactsFacts::Csv("phone\n+15550101\n".into())
        );
        let mut secret = Secret {
            data: Some([("contacts.csv".to_owned(), ByteString(vec![0xff, 0xfe]))].into()),
            ..Secret::default()
        };
        assert!(matches!(
            secret_contacts(&secret, &reference),
            ContactsFacts::Missing(m) if m.contains("not UTF-8")
        ));
        secret.data = Some(
            [(
                "contacts.csv".to_owned(),
                ByteString(b"phone\n+1555\n".to_vec()),
            )]
            .into(),
        );
        assert_eq!(
            secret_contacts(&secret, &reference),
            ContactsFacts::Csv("phone\n+1555\n".into())
        );
    }

    #[test]
    fn progress_counts_final_outcomes_rounded_down() {
        let p = |total, completed, failed, no_answer| Progress {
            total,
            completed,
            failed,
            no_answer,
            ..Progress::default()
        };
        assert_eq!(progress_percent(&p(0, 0, 0, 0)), "0%");
        assert_eq!(progress_percent(&p(3, 1, 0, 0)), "33%");
        assert_eq!(progress_percent(&p(200, 50, 20, 14)), "42%");
        assert_eq!(progress_percent(&p(1000, 999, 0, 0)), "99%");
        assert_eq!(progress_percent(&p(10, 8, 1, 1)), "100%");
        assert_eq!(progress_percent(&p(10, 20, 0, 0)), "100%", "clamped");
    }

    fn campaign(generation: i64) -> Campaign {
        let mut c = Campaign::new("survey", spec());
        c.metadata.generation = Some(generation);
        c
    }

    #[test]
    fn statuses_mirror_progress_and_are_stable() {
        let now = Timestamp::from_second(1_000).unwrap();
        let progress = Progress {
            phase: CampaignPhase::Running,
            total: 10,
            pending: 5,
            in_progress: 2,
            completed: 3,
            failed: 0,
            no_answer: 0,
            reason: None,
        };
        let result = RegistrationResult {
            registered: true,
            contacts: 10,
            rejected: vec![RejectedRow {
                row: 3,
                error: "not E.164".into(),
            }],
        };
        let mut c = campaign(2);
        let first = registered_status(&c, &progress, Some(&result), None, now);
        assert_eq!(first.phase, CampaignPhase::Running);
        assert_eq!(first.progress.as_deref(), Some("30%"));
        assert_eq!(first.observed_generation, Some(2));
        assert!(is_condition_true(&first.conditions, CONDITION_VALID));
        let ready = find_condition(&first.conditions, CONDITION_READY).unwrap();
        assert_eq!(
            ready.message,
            "registered with the gateway: 10 contacts accepted, 1 rejected (row 3: not E.164)"
        );
        c.status = Some(first.clone());
        assert!(is_registered(&c, None));
        let digest = contacts_digest(Some("phone\n+15550100\n"));
        assert!(
            !is_registered(&c, digest.as_deref()),
            "edited contacts register again"
        );
        let mut with_contacts = c.clone();
        with_contacts.status = Some(registered_status(
            &c,
            &progress,
            Some(&result),
            digest.as_deref(),
            now,
        ));
        assert!(is_registered(&with_contacts, digest.as_deref()));
        assert_ne!(digest, contacts_digest(Some("phone\n+15550101\n")));
        let later = Timestamp::from_second(9_000).unwrap();
        assert_eq!(
            registered_status(&c, &progress, None, None, later),
            first,
            "no churn"
        );
        c.metadata.generation = Some(3);
        assert!(!is_registered(&c, None), "a new generation re-registers");
    }

    #[test]
    fn invalid_campaigns_keep_counts_and_say_why() {
        let now = Timestamp::from_second(1_000).unwrap();
        let mut c = campaign(1);
        c.status = Some(CampaignStatus {
            total: 7,
            completed: 7,
            ..CampaignStatus::default()
        });
        let invalid = Invalid::new(InvalidReason::TenantSuspended, "suspended");
        let status = invalid_status(&c, &invalid, now);
        assert_eq!(status.phase, CampaignPhase::Paused);
        assert_eq!(status.total, 7);
        let valid = find_condition(&status.conditions, CONDITION_VALID).unwrap();
        assert_eq!(
            (valid.status.as_str(), valid.reason.as_str()),
            ("False", "TenantSuspended")
        );
        assert!(!is_condition_true(&status.conditions, CONDITION_READY));
        c.status = Some(status);
        assert!(was_invalid(&c));
        assert!(!is_registered(&c, None));
    }

    #[test]
    fn long_rejection_lists_are_summarised() {
        let result = RegistrationResult {
            registered: true,
            contacts: 1,
            rejected: (1..=5)
                .map(|row| RejectedRow {
                    row,
                    error: "duplicate".into(),
                })
                .collect(),
        };
        let message = registration_message(&result);
        assert!(
            message.ends_with(
                "5 rejected (row 1: duplicate; row 2: duplicate; row 3: duplicate; 2 more)"
            ),
            "{message}"
        );
    }

    #[test]
    fn campaign_scripts_hold_live_campaigns_with_an_agent_only() {
        let with_agent = |name: &str| {
            let mut c = Campaign::new(name, spec());
            c.spec.agent = Some(switchboard_crds::campaign::CampaignAgent {
                greeting: Some(format!("hello from {name}")),
                ..Default::default()
            });
            c
        };
        let mut leaving = with_agent("leaving");
        leaving.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Timestamp::from_second(1).unwrap(),
            ));
        let plain = Campaign::new("plain", spec());
        let map = campaign_scripts("tenant-acme", &[with_agent("spring"), leaving, plain]).unwrap();
        assert_eq!(map.metadata.name.as_deref(), Some("switchboard-agent"));
        let scripts: serde_json::Value =
            serde_json::from_str(&map.data.unwrap()[CAMPAIGN_SCRIPTS_KEY]).unwrap();
        assert_eq!(
            scripts,
            serde_json::json!({"spring": {"greeting": "hello from spring", "questions": []}})
        );
    }

    #[test]
    fn the_dialing_condition_says_why_calls_are_not_placed() {
        let now = Timestamp::from_second(1_000).unwrap();
        let progress = |phase, reason: Option<&str>| Progress {
            phase,
            total: 4,
            pending: 4,
            reason: reason.map(str::to_owned),
            ..Progress::default()
        };
        let dialing = |p: &Progress| {
            let status = registered_status(&campaign(1), p, None, None, now);
            let c = find_condition(&status.conditions, CONDITION_DIALING).unwrap();
            (c.status.clone(), c.reason.clone())
        };
        assert_eq!(
            dialing(&progress(CampaignPhase::Running, None)),
            ("True".into(), "Dialing".into())
        );
        assert_eq!(
            dialing(&progress(CampaignPhase::Running, Some("OutsideWindow"))),
            ("False".into(), "OutsideWindow".into())
        );
        assert_eq!(
            dialing(&progress(CampaignPhase::Paused, Some("PlanLimitReached"))),
            ("False".into(), "PlanLimitReached".into())
        );
        assert_eq!(
            dialing(&progress(CampaignPhase::Completed, None)),
            ("False".into(), "Completed".into())
        );
    }
}
