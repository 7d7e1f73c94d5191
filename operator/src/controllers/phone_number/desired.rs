//! Pure decisions of the PhoneNumber controller: the number's
//! idempotency key, whether the plan allows another number, what to search for, and the
//! status to write. No API calls here, so every rule is unit-tested directly.

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use switchboard_carriers::{NumberQuery, OwnedNumber};

use crate::gateway_client::GatewayError;
use switchboard_crds::phone_number::{CONDITION_READY, CONDITION_SYNCED};
use switchboard_crds::{
    CarrierKind, ConditionStatus, EXTERNAL_NAME_ANNOTATION, PhoneNumber, PhoneNumberStatus, Tenant,
    set_condition,
};

/// Annotation holding the idempotency key tagged on the purchase at the carrier.
pub const IDEMPOTENCY_KEY_ANNOTATION: &str = "voice.switchboard.dev/idempotency-key";
/// Crossplane-style: set (to an RFC 3339 time) just before the carrier is asked to buy.
pub const CREATE_PENDING_ANNOTATION: &str = "voice.switchboard.dev/external-create-pending";
/// Crossplane-style: set once the purchase (or adoption/import) is recorded.
pub const CREATE_SUCCEEDED_ANNOTATION: &str = "voice.switchboard.dev/external-create-succeeded";
/// Crossplane-style: set when the carrier refused the purchase.
pub const CREATE_FAILED_ANNOTATION: &str = "voice.switchboard.dev/external-create-failed";

/// Condition reasons this controller uses.
pub mod reason {
    /// Number owned and webhooks configured.
    pub const AVAILABLE: &str = "Available";
    /// Reconcile brought the carrier in line with the spec.
    pub const RECONCILE_SUCCESS: &str = "ReconcileSuccess";
    /// The plan's number limit is reached.
    pub const LIMIT_EXCEEDED: &str = "LimitExceeded";
    /// The namespace is not a tenant namespace, or its Tenant is gone.
    pub const TENANT_NOT_FOUND: &str = "TenantNotFound";
    /// The carrier credentials Secret or one of its keys is missing, or no platform account.
    pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";
    /// The number recorded in the external-name annotation is not on the carrier account.
    pub const NOT_FOUND_AT_CARRIER: &str = "NotFoundAtCarrier";
    /// The carrier is being asked; the result is not known yet.
    pub const CREATING: &str = "Creating";
    /// The gateway refused the number's route (its reason is in the message).
    pub const GATEWAY_REJECTED: &str = "GatewayRejected";
    /// The gateway could not be asked to route the number (unreachable, 5xx, bad token).
    pub const GATEWAY_UNAVAILABLE: &str = "GatewayUnavailable";
}

/// `ready`'s status (see [`ready_status`]: the number is owned and its webhooks set) turned
/// not Ready because the gateway has not accepted the number's route: calls to it would be
/// refused. The reason says whether the gateway refused (with its message) or could not be
/// asked; `Synced` stays as it was (the carrier matches the spec).
pub fn unrouted_status(
    mut ready: PhoneNumberStatus,
    error: &GatewayError,
    now: Timestamp,
) -> PhoneNumberStatus {
    let generation = ready.observed_generation;
    let (why, message) = match error {
        GatewayError::Rejected { message, code, .. } => (
            reason::GATEWAY_REJECTED,
            format!("the gateway refused to route the number: {message} ({code})"),
        ),
        other => (
            reason::GATEWAY_UNAVAILABLE,
            format!("the gateway could not be asked to route the number: {other}"),
        ),
    };
    let e164 = ready.e164.clone().unwrap_or_default();
    set_condition(
        &mut ready.conditions,
        CONDITION_READY,
        ConditionStatus::False,
        why,
        format!("{e164} is owned at the carrier but not routed: {message}; retrying"),
        generation,
        now,
    );
    ready
}

/// The idempotency key for `number`: the recorded one, else one derived from its uid.
///
/// Deriving it from the uid (stable for the object's whole life, never reused) means that
/// even a key whose recording was lost is regenerated identically, so the carrier-side tag
/// still finds the purchase. `None` only for objects without a uid (never from the API).
pub fn idempotency_key(number: &PhoneNumber) -> Option<String> {
    if let Some(key) = number.annotations().get(IDEMPOTENCY_KEY_ANNOTATION) {
        return Some(key.clone());
    }
    number.metadata.uid.as_ref().map(|uid| format!("sb-{uid}"))
}

/// The carrier id recorded on `number`, if it was bought, adopted or imported.
pub fn external_name(number: &PhoneNumber) -> Option<&str> {
    number
        .annotations()
        .get(EXTERNAL_NAME_ANNOTATION)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// Whether `number` holds (or may hold, mid-purchase) a number at the carrier.
fn holds_a_number(number: &PhoneNumber) -> bool {
    let annotations = number.annotations();
    external_name(number).is_some() || annotations.contains_key(CREATE_PENDING_ANNOTATION)
}

/// How many of `numbers`, other than the one named `me`, hold a number. Objects being
/// deleted still count until their finalizer has released the number.
pub fn numbers_held_by_others(numbers: &[PhoneNumber], me: &str) -> u32 {
    let held = numbers
        .iter()
        .filter(|n| n.name_any() != me && holds_a_number(n))
        .count();
    u32::try_from(held).unwrap_or(u32::MAX)
}

/// Whether buying one more number would exceed `limit` (`None` = unlimited).
pub fn limit_reached(limit: Option<u32>, held_by_others: u32) -> bool {
    limit.is_some_and(|limit| held_by_others >= limit)
}

/// The carrier search for a PhoneNumber without an exact number.
pub fn number_query(number: &PhoneNumber) -> NumberQuery {
    NumberQuery {
        country: number.spec.country.clone(),
        area_code: number.spec.area_code.clone(),
        capabilities: number.spec.capabilities.clone(),
        limit: 5,
    }
}

/// The carrier a PhoneNumber uses: its own `spec.carrier`, else the carrier it was bought
/// at (so a tenant switching carriers never orphans an owned number), else the tenant's.
pub fn carrier_kind(number: &PhoneNumber, tenant: Option<&Tenant>) -> CarrierKind {
    number
        .spec
        .carrier
        .or_else(|| number.status.as_ref().and_then(|s| s.carrier))
        .or_else(|| tenant.map(|t| t.spec.carrier.kind))
        .unwrap_or_default()
}

/// The tenant's credentials Secret when it applies to `kind` (a tenant's own account is for
/// the tenant's carrier; numbers on another carrier use the platform's account).
pub fn credentials_secret(tenant: Option<&Tenant>, kind: CarrierKind) -> Option<&str> {
    let carrier = &tenant?.spec.carrier;
    (carrier.kind == kind)
        .then_some(carrier.credentials_secret_ref.as_deref())
        .flatten()
}

/// What the cluster records about a sandbox number `number` owns, to restore the sandbox's
/// inventory after an operator restart (the in-memory sandbox forgets; the objects do not).
pub fn sandbox_record(number: &PhoneNumber) -> Option<OwnedNumber> {
    let status = number.status.as_ref()?;
    if status.carrier != Some(CarrierKind::Sandbox) {
        return None;
    }
    Some(OwnedNumber {
        id: external_name(number)?.to_owned(),
        e164: status.e164.clone()?,
        tag: status.idempotency_key.clone(),
        voice_url: status.webhook_url.clone(),
        status_callback_url: None,
    })
}

/// The status of a number that is owned and configured.
pub fn ready_status(
    number: &PhoneNumber,
    kind: CarrierKind,
    owned: &OwnedNumber,
    webhook_url: &str,
    key: Option<&str>,
    now: Timestamp,
) -> PhoneNumberStatus {
    let generation = number.metadata.generation;
    let mut status = number.status.clone().unwrap_or_default();
    status.e164 = Some(owned.e164.clone());
    status.carrier = Some(kind);
    status.carrier_id = Some(owned.id.clone());
    status.webhook_url = Some(webhook_url.to_owned());
    if let Some(key) = key {
        status.idempotency_key = Some(key.to_owned());
    }
    status.observed_generation = generation;
    set_condition(
        &mut status.conditions,
        CONDITION_READY,
        ConditionStatus::True,
        reason::AVAILABLE,
        format!(
            "{} is owned at {} and routed to the gateway",
            owned.e164,
            kind.as_str()
        ),
        generation,
        now,
    );
    set_condition(
        &mut status.conditions,
        CONDITION_SYNCED,
        ConditionStatus::True,
        reason::RECONCILE_SUCCESS,
        "carrier matches the spec",
        generation,
        now,
    );
    status
}

/// The status of a number that is not (yet) usable, with the reason and a human message.
pub fn not_ready_status(
    number: &PhoneNumber,
    reason: &str,
    message: &str,
    key: Option<&str>,
    now: Timestamp,
) -> PhoneNumberStatus {
    let generation = number.metadata.generation;
    let mut status = number.status.clone().unwrap_or_default();
    if let Some(key) = key {
        status.idempotency_key = Some(key.to_owned());
    }
    status.observed_generation = generation;
    set_condition(
        &mut status.conditions,
        CONDITION_READY,
        ConditionStatus::False,
        reason,
        message,
        generation,
        now,
    );
    set_condition(
        &mut status.conditions,
        CONDITION_SYNCED,
        ConditionStatus::False,
        reason,
        message,
        generation,
        now,
    );
    status
}

/// The status after a failed check of an owned number: only `Synced` turns False; `Ready`
/// and the recorded number stay as they were.
pub fn sync_failed_status(
    number: &PhoneNumber,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> PhoneNumberStatus {
    let generation = number.metadata.generation;
    let mut status = number.status.clone().unwrap_or_default();
    set_condition(
        &mut status.conditions,
        CONDITION_SYNCED,
        ConditionStatus::False,
        reason,
        message,
        generation,
        now,
    );
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_crds::conditions::{find_condition, is_condition_true};

    fn number(name: &str, annotations: &[(&str, &str)]) -> PhoneNumber {
        let mut n: PhoneNumber = serde_json::from_value(serde_json::json!({
            "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
            "metadata": {"name": name, "namespace": "tenant-acme", "uid": format!("uid-{name}"), "generation": 2},
            "spec": {"areaCode": "555"}
        }))
        .unwrap();
        n.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        n
    }

    fn owned() -> OwnedNumber {
        OwnedNumber {
            id: "SB000001".into(),
            e164: "+15550100".into(),
            tag: Some("sb-uid-a".into()),
            voice_url: Some("https://gw/api/v1/webhooks/twilio/voice".into()),
            status_callback_url: None,
        }
    }

    #[test]
    fn the_key_is_recorded_or_derived_from_the_uid() {
        assert_eq!(
            idempotency_key(&number("a", &[])).as_deref(),
            Some("sb-uid-a")
        );
        let recorded = number("a", &[(IDEMPOTENCY_KEY_ANNOTATION, "sb-earlier")]);
        assert_eq!(idempotency_key(&recorded).as_deref(), Some("sb-earlier"));
        let mut no_uid = number("a", &[]);
        no_uid.metadata.uid = None;
        assert_eq!(idempotency_key(&no_uid), None);
    }

    #[test]
    fn limit_counts_owned_and_in_flight_numbers_of_others() {
        let numbers = vec![
            number("me", &[(CREATE_PENDING_ANNOTATION, "t")]),
            number("bought", &[(EXTERNAL_NAME_ANNOTATION, "SB1")]),
            number("buying", &[(CREATE_PENDING_ANNOTATION, "t")]),
            number("blocked", &[]),
        ];
        let held = numbers_held_by_others(&numbers, "me");
        assert_eq!(held, 2);
        assert!(limit_reached(Some(2), held));
        assert!(!limit_reached(Some(3), held));
        assert!(!limit_reached(None, held));
        assert!(limit_reached(Some(0), 0));
    }

    #[test]
    fn carrier_and_credentials_follow_spec_then_purchase_then_tenant() {
        let tenant: Tenant = serde_json::from_value(serde_json::json!({
            "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": "acme"},
            "spec": {"displayName": "Acme", "carrier": {"kind": "twilio", "credentialsSecretRef": "twilio-creds"}}
        }))
        .unwrap();
        let mut n = number("a", &[]);
        assert_eq!(carrier_kind(&n, Some(&tenant)), CarrierKind::Twilio);
        assert_eq!(carrier_kind(&n, None), CarrierKind::Sandbox);
        assert_eq!(
            credentials_secret(Some(&tenant), CarrierKind::Twilio),
            Some("twilio-creds")
        );
        // A number on another carrier than the tenant's uses the platform's account.
        assert_eq!(credentials_secret(Some(&tenant), CarrierKind::Telnyx), None);
        n.status = Some(PhoneNumberStatus {
            carrier: Some(CarrierKind::Telnyx),
            ..PhoneNumberStatus::default()
        });
        assert_eq!(carrier_kind(&n, Some(&tenant)), CarrierKind::Telnyx);
        n.spec.carrier = Some(CarrierKind::Sandbox);
        assert_eq!(carrier_kind(&n, Some(&tenant)), CarrierKind::Sandbox);
    }

    #[test]
    fn only_recorded_sandbox_numbers_are_restorable() {
        let mut n = number("a", &[(EXTERNAL_NAME_ANNOTATION, "SB000001")]);
        assert_eq!(sandbox_record(&n), None, "no status yet");
        let now = Timestamp::from_second(1).unwrap();
        n.status = Some(ready_status(
            &n,
            CarrierKind::Sandbox,
            &owned(),
            "u",
            Some("sb-uid-a"),
            now,
        ));
        let record = sandbox_record(&n).unwrap();
        assert_eq!(
            (record.id.as_str(), record.e164.as_str()),
            ("SB000001", "+15550100")
        );
        assert_eq!(record.tag.as_deref(), Some("sb-uid-a"));
        n.status.as_mut().unwrap().carrier = Some(CarrierKind::Twilio);
        assert_eq!(sandbox_record(&n), None);
    }

    #[test]
    fn a_failed_check_of_an_owned_number_only_unsyncs_it() {
        let mut n = number("a", &[]);
        let t1 = Timestamp::from_second(1).unwrap();
        n.status = Some(ready_status(
            &n,
            CarrierKind::Twilio,
            &owned(),
            "u",
            None,
            t1,
        ));
        let status = sync_failed_status(&n, "CarrierUnavailable", "HTTP 503", t1);
        assert!(is_condition_true(&status.conditions, CONDITION_READY));
        let synced = find_condition(&status.conditions, CONDITION_SYNCED).unwrap();
        assert_eq!(
            (synced.status.as_str(), synced.reason.as_str()),
            ("False", "CarrierUnavailable")
        );
        assert_eq!(status.e164.as_deref(), Some("+15550100"));
    }

    #[test]
    fn ready_status_records_the_number_and_both_conditions() {
        let n = number("a", &[]);
        let now = Timestamp::from_second(1_000).unwrap();
        let status = ready_status(
            &n,
            CarrierKind::Sandbox,
            &owned(),
            "https://gw/api/v1/webhooks/twilio/voice",
            Some("sb-uid-a"),
            now,
        );
        assert_eq!(status.e164.as_deref(), Some("+15550100"));
        assert_eq!(status.carrier_id.as_deref(), Some("SB000001"));
        assert_eq!(status.carrier, Some(CarrierKind::Sandbox));
        assert_eq!(status.idempotency_key.as_deref(), Some("sb-uid-a"));
        assert_eq!(status.observed_generation, Some(2));
        assert!(is_condition_true(&status.conditions, CONDITION_READY));
        assert!(is_condition_true(&status.conditions, CONDITION_SYNCED));
    }

    #[test]
    fn not_ready_keeps_what_was_known_and_is_stable() {
        let mut n = number("a", &[]);
        let t1 = Timestamp::from_second(1_000).unwrap();
        n.status = Some(ready_status(
            &n,
            CarrierKind::Twilio,
            &owned(),
            "u",
            None,
            t1,
        ));
        let failing = not_ready_status(&n, "BadCredentials", "rejected", None, t1);
        assert_eq!(failing.e164.as_deref(), Some("+15550100"));
        let ready = find_condition(&failing.conditions, CONDITION_READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "BadCredentials")
        );
        n.status = Some(failing.clone());
        let again = not_ready_status(
            &n,
            "BadCredentials",
            "rejected",
            None,
            Timestamp::from_second(9_000).unwrap(),
        );
        assert_eq!(failing, again, "no churn when nothing changed");
    }
}
