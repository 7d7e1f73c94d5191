//! The PhoneNumber controller against an in-memory Kubernetes API and real carrier
//! implementations: the sandbox carrier (which counts purchases) and a local Twilio server.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use switchboard_carriers::sandbox::is_sandbox_number;
use switchboard_carriers::{Carrier, PurchaseRequest, SandboxCarrier, WebhookConfig};
use switchboard_crds::conditions::{find_condition, is_condition_true};
use switchboard_crds::{EXTERNAL_NAME_ANNOTATION, PhoneNumber, Tenant};
use switchboard_operator::OperatorConfig;
use switchboard_operator::controllers::phone_number::{self, Carriers};
use switchboard_operator::controllers::{Context, Error, tenant};

const NS: &str = "tenant-acme";
const GATEWAY: &str = "https://voice.example.com";

/// Switches that make the fake API server fail like a dying operator would.
#[derive(Clone, Default)]
struct Faults {
    /// Fail every status write of a PhoneNumber.
    status_writes: Arc<AtomicBool>,
    /// Fail the metadata patch that records the external name.
    external_name_writes: Arc<AtomicBool>,
}

/// The tests' in-memory API server (see `support`), behind a layer that fails the writes a
/// dying operator would not get to make, while the matching fault switch is on.
async fn fake_api(tenants: Vec<Tenant>, numbers: Vec<PhoneNumber>, faults: Faults) -> Client {
    let inner = support::fake_api_with(tenants, numbers, support::WriteCounter::default()).await;
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let inner = inner.clone();
        let faults = faults.clone();
        async move {
            let path = request.uri().path().to_owned();
            let writes_number =
                request.method() == http::Method::PATCH && path.contains("/phonenumbers/");
            if !writes_number {
                return inner.send(request).await;
            }
            let (parts, body) = request.into_parts();
            let bytes = support::body_bytes(body).await?;
            let status_write =
                path.ends_with("/status") && faults.status_writes.load(Ordering::SeqCst);
            let records_external_name = !path.ends_with("/status")
                && String::from_utf8_lossy(&bytes).contains(EXTERNAL_NAME_ANNOTATION)
                && faults.external_name_writes.load(Ordering::SeqCst);
            if status_write || records_external_name {
                return Ok(simulated_crash());
            }
            inner
                .send(http::Request::from_parts(
                    parts,
                    kube::client::Body::from(bytes.to_vec()),
                ))
                .await
        }
    });
    Client::new(service, "default")
}

fn simulated_crash() -> http::Response<kube::client::Body> {
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "message": "simulated operator crash", "reason": "InternalError", "code": 500});
    http::Response::builder()
        .status(500)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(
            serde_json::to_vec(&status).unwrap(),
        ))
        .unwrap()
}

/// An operator process: a context over `client` whose carriers are `carriers`.
fn operator(client: Client, carriers: Carriers) -> Arc<Context> {
    let metrics = Arc::new(switchboard_operator::controllers::metrics().unwrap());
    let reporter = Reporter {
        controller: "switchboard-operator".into(),
        instance: Some("test".into()),
    };
    let config = OperatorConfig {
        gateway_public_url: GATEWAY.into(),
        ..OperatorConfig::default()
    };
    Arc::new(Context::new(client, config, metrics, reporter).with_carriers(carriers))
}

/// Carriers whose sandbox is the shared account `sandbox` (it outlives operator restarts).
fn carriers_with(sandbox: &SandboxCarrier) -> Carriers {
    Carriers {
        sandbox: sandbox.clone(),
        ..Carriers::default()
    }
}

fn acme(spec: Value) -> Tenant {
    support::tenant("acme", spec)
}

fn number(name: &str, spec: Value) -> PhoneNumber {
    serde_json::from_value(json!({
        "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }))
    .unwrap()
}

async fn get_number(client: &Client, name: &str) -> PhoneNumber {
    Api::<PhoneNumber>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .unwrap()
}

/// Reconciles the stored PhoneNumber as the controller would after a watch event.
async fn reconcile(ctx: &Arc<Context>, name: &str) -> Result<Action, Error> {
    let current = get_number(&ctx.client, name).await;
    phone_number::reconcile(Arc::new(current), ctx.clone()).await
}

/// First reconcile adds the finalizer; the second does the work.
async fn reconcile_twice(ctx: &Arc<Context>, name: &str) -> Result<Action, Error> {
    reconcile(ctx, name).await.expect("finalizer added");
    reconcile(ctx, name).await
}

fn ready_reason(n: &PhoneNumber) -> (String, String) {
    let c = find_condition(&n.status.as_ref().unwrap().conditions, "Ready").unwrap();
    (c.status.clone(), c.reason.clone())
}

#[tokio::test]
async fn a_number_is_bought_tagged_routed_and_reported() {
    let sandbox = SandboxCarrier::in_memory();
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme", "plan": "starter"}))],
        vec![number("main", json!({"areaCode": "555"}))],
        Faults::default(),
    )
    .await;
    let ctx = operator(client.clone(), carriers_with(&sandbox));
    reconcile_twice(&ctx, "main").await.unwrap();

    let stored = get_number(&client, "main").await;
    assert!(
        stored
            .finalizers()
            .contains(&phone_number::FINALIZER.to_owned())
    );
    let status = stored.status.clone().unwrap();
    let e164 = status.e164.clone().unwrap();
    assert!(is_sandbox_number(&e164), "{e164}");
    assert_eq!(status.carrier, Some(switchboard_crds::CarrierKind::Sandbox));
    assert_eq!(
        status.webhook_url.as_deref(),
        Some("https://voice.example.com/api/v1/webhooks/twilio/voice")
    );
    assert!(is_condition_true(&status.conditions, "Ready"));
    assert!(is_condition_true(&status.conditions, "Synced"));
    assert!(status.observed_generation.is_some());

    // Crossplane-style markers: key, pending then succeeded, external name = carrier id.
    let annotations = stored.annotations();
    let key = &annotations["voice.switchboard.dev/idempotency-key"];
    assert_eq!(status.idempotency_key.as_ref(), Some(key));
    assert!(annotations.contains_key("voice.switchboard.dev/external-create-pending"));
    assert!(annotations.contains_key("voice.switchboard.dev/external-create-succeeded"));
    assert_eq!(
        annotations.get(EXTERNAL_NAME_ANNOTATION),
        status.carrier_id.as_ref()
    );

    // At the carrier: one purchase, tagged with the key, webhooks pointing at the gateway.
    assert_eq!(sandbox.purchase_count(), 1);
    let owned = sandbox.find_by_tag(key).await.unwrap().unwrap();
    assert_eq!(owned.e164, e164);
    assert_eq!(
        owned.status_callback_url.as_deref(),
        Some("https://voice.example.com/api/v1/webhooks/twilio/status")
    );

    // Further reconciles observe; they neither buy again nor, once settled, rewrite the
    // status. (The fake bumps metadata.generation on annotation writes, which a real API
    // server does not, so the first observe still records a new observedGeneration.)
    reconcile(&ctx, "main").await.unwrap();
    let before = get_number(&client, "main").await.status;
    reconcile(&ctx, "main").await.unwrap();
    assert_eq!(sandbox.purchase_count(), 1);
    assert_eq!(get_number(&client, "main").await.status, before);
}

#[tokio::test]
async fn drifted_webhooks_are_put_back() {
    let sandbox = SandboxCarrier::in_memory();
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme"}))],
        vec![number("main", json!({}))],
        Faults::default(),
    )
    .await;
    let ctx = operator(client.clone(), carriers_with(&sandbox));
    reconcile_twice(&ctx, "main").await.unwrap();
    let id = get_number(&client, "main")
        .await
        .status
        .unwrap()
        .carrier_id
        .unwrap();
    let elsewhere = WebhookConfig {
        voice_url: "https://attacker.example/hook".into(),
        status_callback_url: None,
    };
    sandbox.configure_webhooks(&id, &elsewhere).await.unwrap();
    reconcile(&ctx, "main").await.unwrap();
    let owned = sandbox.get(&id).await.unwrap().unwrap();
    assert_eq!(
        owned.voice_url.as_deref(),
        Some("https://voice.example.com/api/v1/webhooks/twilio/voice")
    );

    // A carrier outage while checking: Synced=False, but the number stays Ready.
    use switchboard_carriers::sandbox::{SandboxFailure, SandboxOp};
    sandbox.fail(SandboxOp::Lookup, SandboxFailure::Transient, Some(1));
    reconcile(&ctx, "main").await.unwrap();
    let status = get_number(&client, "main").await.status.unwrap();
    assert!(is_condition_true(&status.conditions, "Ready"));
    let synced = find_condition(&status.conditions, "Synced").unwrap();
    assert_eq!(
        (synced.status.as_str(), synced.reason.as_str()),
        ("False", "CarrierUnavailable")
    );
    reconcile(&ctx, "main").await.unwrap();
    let status = get_number(&client, "main").await.status.unwrap();
    assert!(is_condition_true(&status.conditions, "Synced"), "recovers");
    let owned = sandbox.get(&id).await.unwrap().unwrap();
    assert_eq!(
        owned.voice_url.as_deref(),
        Some("https://voice.example.com/api/v1/webhooks/twilio/voice")
    );
}

#[tokio::test]
async fn the_plan_limit_blocks_purchases_until_raised() {
    let sandbox = SandboxCarrier::in_memory();
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme", "plan": "free"}))],
        vec![number("first", json!({})), number("second", json!({}))],
        Faults::default(),
    )
    .await;
    let ctx = operator(client.clone(), carriers_with(&sandbox));
    reconcile_twice(&ctx, "first").await.unwrap();
    reconcile_twice(&ctx, "second").await.unwrap();

    let second = get_number(&client, "second").await;
    assert_eq!(
        ready_reason(&second),
        ("False".into(), "LimitExceeded".into())
    );
    let synced = find_condition(&second.status.as_ref().unwrap().conditions, "Synced").unwrap();
    assert_eq!(synced.status, "False");
    assert!(synced.message.contains("free"), "{}", synced.message);
    assert_eq!(sandbox.purchase_count(), 1, "nothing bought over the limit");
    assert!(
        second
            .annotations()
            .get("voice.switchboard.dev/external-create-pending")
            .is_none()
    );

    // The Tenant overrides the plan: the second number goes through.
    Api::<Tenant>::all(client.clone())
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"limits": {"phoneNumbers": 2}}})),
        )
        .await
        .unwrap();
    reconcile(&ctx, "second").await.unwrap();
    assert!(is_condition_true(
        &get_number(&client, "second")
            .await
            .status
            .unwrap()
            .conditions,
        "Ready"
    ));
    assert_eq!(sandbox.purchase_count(), 2);
}

/// A PhoneNumber whose number `owned` was bought earlier, now being deleted. (kube-fake-client
/// deletes at once on DELETE, ignoring finalizers, so a terminating object is seeded instead.)
fn terminating(name: &str, spec: Value, annotations: Value) -> PhoneNumber {
    let mut n = number(name, spec);
    n.metadata.annotations = serde_json::from_value(annotations).unwrap();
    n.metadata.finalizers = Some(vec![phone_number::FINALIZER.to_owned()]);
    n.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    n.metadata.uid = Some(format!("uid-{name}"));
    n
}

async fn sandbox_with(numbers: &[(&str, &str)]) -> (SandboxCarrier, Vec<String>) {
    let sandbox = SandboxCarrier::in_memory();
    let mut ids = Vec::new();
    for (e164, tag) in numbers {
        let request = PurchaseRequest {
            e164: (*e164).into(),
            tag: (*tag).into(),
            webhooks: WebhookConfig::default(),
        };
        ids.push(sandbox.buy(&request).await.unwrap().id);
    }
    (sandbox, ids)
}

#[tokio::test]
async fn numbers_reconciled_at_once_cannot_both_take_the_last_slot() {
    let sandbox = SandboxCarrier::in_memory();
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme", "plan": "free"}))],
        vec![number("a", json!({})), number("b", json!({}))],
        Faults::default(),
    )
    .await;
    let ctx = operator(client.clone(), carriers_with(&sandbox));
    reconcile(&ctx, "a").await.unwrap();
    reconcile(&ctx, "b").await.unwrap();
    let (a, b) = tokio::join!(reconcile(&ctx, "a"), reconcile(&ctx, "b"));
    a.unwrap();
    b.unwrap();
    assert_eq!(
        sandbox.purchase_count(),
        1,
        "the free plan's one slot is taken once"
    );
    let mut reasons = vec![
        ready_reason(&get_number(&client, "a").await).1,
        ready_reason(&get_number(&client, "b").await).1,
    ];
    reasons.sort();
    assert_eq!(reasons, ["Available", "LimitExceeded"]);
}

#[tokio::test]
async fn release_gives_the_number_back_and_retain_keeps_it() {
    let (sandbox, ids) = sandbox_with(&[
        ("+15550100", "sb-uid-released"),
        ("+15550101", "sb-uid-kept"),
    ])
    .await;
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme", "plan": "professional"}))],
        vec![
            terminating(
                "released",
                json!({}),
                json!({(EXTERNAL_NAME_ANNOTATION): ids[0]}),
            ),
            terminating(
                "kept",
                json!({"deletionPolicy": "Retain"}),
                json!({(EXTERNAL_NAME_ANNOTATION): ids[1]}),
            ),
        ],
        Faults::default(),
    )
    .await;
    let ctx = operator(client.clone(), carriers_with(&sandbox));
    let api: Api<PhoneNumber> = Api::namespaced(client.clone(), NS);
    for name in ["released", "kept"] {
        reconcile(&ctx, name).await.unwrap();
        assert!(
            api.get_opt(name).await.unwrap().is_none(),
            "{name}: finalizer removed, object gone"
        );
    }
    let owned = sandbox.owned_numbers();
    assert_eq!(owned.len(), 1);
    assert_eq!(
        owned[0].id, ids[1],
        "Retain keeps the number on the account"
    );
    assert_eq!(sandbox.release_count(), 1);
}

#[tokio::test]
async fn a_failed_release_keeps_the_object_until_it_succeeds() {
    use switchboard_carriers::sandbox::{SandboxFailure, SandboxOp};
    let (sandbox, ids) = sandbox_with(&[("+15550100", "sb-uid-main")]).await;
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme"}))],
        vec![terminating(
            "main",
            json!({}),
            json!({(EXTERNAL_NAME_ANNOTATION): ids[0]}),
        )],
        Faults::default(),
    )
    .await;
    let ctx = operator(client.clone(), carriers_with(&sandbox));
    let api: Api<PhoneNumber> = Api::namespaced(client.clone(), NS);
    sandbox.fail(SandboxOp::Release, SandboxFailure::Transient, Some(1));
    assert!(matches!(
        reconcile(&ctx, "main").await,
        Err(Error::Carrier(_))
    ));
    assert!(
        api.get_opt("main").await.unwrap().is_some(),
        "held by the finalizer"
    );
    reconcile(&ctx, "main").await.unwrap();
    assert!(api.get_opt("main").await.unwrap().is_none());
    assert!(sandbox.owned_numbers().is_empty());
}

#[tokio::test]
async fn deleting_mid_purchase_releases_the_unrecorded_number_found_by_its_tag() {
    let (sandbox, _) =
        sandbox_with(&[("+15550100", "sb-uid-main"), ("+15550101", "someone-else")]).await;
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme"}))],
        vec![terminating(
            "main",
            json!({}),
            json!({"voice.switchboard.dev/idempotency-key": "sb-uid-main",
                   "voice.switchboard.dev/external-create-pending": "2026-11-21T05:00:00Z"}),
        )],
        Faults::default(),
    )
    .await;
    let ctx = operator(client.clone(), carriers_with(&sandbox));
    reconcile(&ctx, "main").await.unwrap();
    let left: Vec<String> = sandbox
        .owned_numbers()
        .into_iter()
        .map(|n| n.e164)
        .collect();
    assert_eq!(
        left,
        ["+15550101"],
        "only the number tagged with this object's key is released"
    );
}

#[tokio::test]
async fn the_purchase_survives_a_crash_before_the_status_write() {
    let sandbox = SandboxCarrier::in_memory();
    let faults = Faults::default();
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme", "plan": "starter"}))],
        vec![number("main", json!({}))],
        faults.clone(),
    )
    .await;
    let first = operator(client.clone(), carriers_with(&sandbox));
    reconcile(&first, "main").await.expect("finalizer added");
    faults.status_writes.store(true, Ordering::SeqCst);
    assert!(
        reconcile(&first, "main").await.is_err(),
        "the status write fails"
    );
    assert_eq!(sandbox.purchase_count(), 1, "the carrier sold the number");
    drop(first);

    // A new operator process, same carrier account, API healthy again.
    faults.status_writes.store(false, Ordering::SeqCst);
    let restarted = operator(client.clone(), carriers_with(&sandbox));
    reconcile(&restarted, "main").await.unwrap();
    reconcile(&restarted, "main").await.unwrap();
    assert_eq!(sandbox.purchase_count(), 1, "never bought twice");
    assert_eq!(sandbox.owned_numbers().len(), 1);
    let status = get_number(&client, "main").await.status.unwrap();
    assert!(is_condition_true(&status.conditions, "Ready"));
    assert_eq!(
        status.carrier_id.as_deref(),
        Some(sandbox.owned_numbers()[0].id.as_str())
    );
}

#[tokio::test]
async fn a_purchase_never_recorded_is_adopted_by_its_tag() {
    let sandbox = SandboxCarrier::in_memory();
    let faults = Faults::default();
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme", "plan": "starter"}))],
        vec![number("main", json!({}))],
        faults.clone(),
    )
    .await;
    let first = operator(client.clone(), carriers_with(&sandbox));
    reconcile(&first, "main").await.expect("finalizer added");
    // The operator dies right after the carrier's "bought": neither external name nor status.
    faults.external_name_writes.store(true, Ordering::SeqCst);
    faults.status_writes.store(true, Ordering::SeqCst);
    assert!(reconcile(&first, "main").await.is_err());
    assert_eq!(sandbox.purchase_count(), 1);
    let stored = get_number(&client, "main").await;
    assert!(stored.annotations().get(EXTERNAL_NAME_ANNOTATION).is_none());
    assert!(
        stored
            .annotations()
            .contains_key("voice.switchboard.dev/external-create-pending")
    );

    faults.external_name_writes.store(false, Ordering::SeqCst);
    faults.status_writes.store(false, Ordering::SeqCst);
    let restarted = operator(client.clone(), carriers_with(&sandbox));
    reconcile(&restarted, "main").await.unwrap();
    assert_eq!(sandbox.purchase_count(), 1, "adopted, not bought again");
    assert_eq!(sandbox.owned_numbers().len(), 1);
    let stored = get_number(&client, "main").await;
    assert_eq!(
        stored.annotations().get(EXTERNAL_NAME_ANNOTATION),
        Some(&sandbox.owned_numbers()[0].id)
    );
    assert!(is_condition_true(
        &stored.status.unwrap().conditions,
        "Ready"
    ));
}

#[tokio::test]
async fn a_number_the_account_already_owns_is_imported() {
    let sandbox = SandboxCarrier::in_memory();
    let existing = sandbox
        .buy(&PurchaseRequest {
            e164: "+15550150".into(),
            tag: "bought-by-hand".into(),
            webhooks: WebhookConfig::default(),
        })
        .await
        .unwrap();
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme"}))],
        vec![number("imported", json!({"number": "+15550150"}))],
        Faults::default(),
    )
    .await;
    let ctx = operator(client.clone(), carriers_with(&sandbox));
    reconcile_twice(&ctx, "imported").await.unwrap();
    let stored = get_number(&client, "imported").await;
    let status = stored.status.clone().unwrap();
    assert_eq!(status.carrier_id.as_deref(), Some(existing.id.as_str()));
    assert_eq!(status.e164.as_deref(), Some("+15550150"));
    assert!(is_condition_true(&status.conditions, "Ready"));
    assert_eq!(sandbox.purchase_count(), 1, "imported, not bought");
    assert_eq!(status.idempotency_key, None, "nothing was tagged by us");
    // Importing routes the number to the gateway.
    let routed = sandbox.get(&existing.id).await.unwrap().unwrap();
    assert_eq!(
        routed.voice_url.as_deref(),
        Some("https://voice.example.com/api/v1/webhooks/twilio/voice")
    );
}

#[tokio::test]
async fn a_carrier_with_nothing_left_reports_nothing_available() {
    let sandbox = SandboxCarrier::in_memory();
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme"}))],
        vec![number("nyc", json!({"areaCode": "212"}))],
        Faults::default(),
    )
    .await;
    let ctx = operator(client.clone(), carriers_with(&sandbox));
    reconcile_twice(&ctx, "nyc").await.unwrap();
    let stored = get_number(&client, "nyc").await;
    assert_eq!(
        ready_reason(&stored),
        ("False".into(), "NothingAvailable".into())
    );
    assert!(
        stored
            .annotations()
            .contains_key("voice.switchboard.dev/external-create-failed")
    );
    assert!(
        !stored
            .annotations()
            .contains_key("voice.switchboard.dev/external-create-pending")
    );
    assert_eq!(sandbox.purchase_count(), 0);
}

// ---- Twilio, with the tenant's own credentials from a Secret -------------------------------

const SID: &str = "AC0000000000000000000000000000acme";
const TOKEN: &str = "right-token";

#[derive(Default)]
struct FakeTwilio {
    numbers: Mutex<Vec<Value>>,
}

fn authorised(headers: &HeaderMap) -> bool {
    // base64("{SID}:{TOKEN}")
    let expected = "Basic QUMwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwYWNtZTpyaWdodC10b2tlbg==";
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected)
}

fn unauthorised() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}))).into_response()
}

type Pairs = Vec<(String, String)>;

fn field<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn twilio_available(headers: HeaderMap) -> Response {
    if !authorised(&headers) {
        return unauthorised();
    }
    Json(json!({"available_phone_numbers": [{"phone_number": "+14155550142", "region": "CA", "locality": "San Francisco"}]})).into_response()
}

async fn twilio_numbers(
    State(fake): State<Arc<FakeTwilio>>,
    headers: HeaderMap,
    Query(q): Query<Pairs>,
) -> Response {
    if !authorised(&headers) {
        return unauthorised();
    }
    let numbers = fake.numbers.lock().unwrap();
    let found: Vec<Value> = numbers
        .iter()
        .filter(|n| field(&q, "FriendlyName").is_none_or(|f| n["friendly_name"] == f))
        .filter(|n| field(&q, "PhoneNumber").is_none_or(|p| n["phone_number"] == p))
        .cloned()
        .collect();
    Json(json!({"incoming_phone_numbers": found})).into_response()
}

async fn twilio_buy(
    State(fake): State<Arc<FakeTwilio>>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    if !authorised(&headers) {
        return unauthorised();
    }
    let number = json!({
        "sid": "PN0000000000000000000000000000beef", "phone_number": field(&form, "PhoneNumber"),
        "friendly_name": field(&form, "FriendlyName"), "voice_url": field(&form, "VoiceUrl"),
        "status_callback": field(&form, "StatusCallback")
    });
    fake.numbers.lock().unwrap().push(number.clone());
    (StatusCode::CREATED, Json(number)).into_response()
}

async fn twilio_number(
    State(fake): State<Arc<FakeTwilio>>,
    headers: HeaderMap,
    Path((_, pn)): Path<(String, String)>,
) -> Response {
    if !authorised(&headers) {
        return unauthorised();
    }
    let pn = pn.trim_end_matches(".json");
    match fake.numbers.lock().unwrap().iter().find(|n| n["sid"] == pn) {
        Some(n) => Json(n.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"code": 20404, "message": "not found", "status": 404})),
        )
            .into_response(),
    }
}

async fn fake_twilio() -> (String, Arc<FakeTwilio>) {
    let fake = Arc::new(FakeTwilio::default());
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/AvailablePhoneNumbers/{country}/Local.json",
            get(twilio_available),
        )
        .route(
            "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json",
            get(twilio_numbers).post(twilio_buy),
        )
        .route(
            "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers/{pn}",
            get(twilio_number),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/2010-04-01", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, fake)
}

fn credentials(token: &str) -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("twilio-creds".into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        data: Some(
            [("accountSid", SID), ("authToken", token)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

#[tokio::test]
async fn tenant_credentials_come_from_its_secret_and_bad_ones_are_reported() {
    let (base, twilio) = fake_twilio().await;
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme", "carrier": {"kind": "twilio", "credentialsSecretRef": "twilio-creds"}}))],
        vec![number("main", json!({"areaCode": "415"}))],
        Faults::default(),
    )
    .await;
    let ctx = operator(
        client.clone(),
        Carriers {
            twilio_base_url: base,
            ..Carriers::default()
        },
    );

    // No Secret yet.
    reconcile_twice(&ctx, "main").await.unwrap();
    let stored = get_number(&client, "main").await;
    assert_eq!(
        ready_reason(&stored),
        ("False".into(), "CredentialsMissing".into())
    );

    // A Secret with the wrong token: Twilio says 401.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    secrets
        .create(&PostParams::default(), &credentials("wrong-token"))
        .await
        .unwrap();
    reconcile(&ctx, "main").await.unwrap();
    let stored = get_number(&client, "main").await;
    assert_eq!(
        ready_reason(&stored),
        ("False".into(), "BadCredentials".into())
    );
    assert!(twilio.numbers.lock().unwrap().is_empty());

    // Fixed credentials: bought through Twilio, tagged with the key as FriendlyName.
    secrets
        .replace("twilio-creds", &PostParams::default(), &credentials(TOKEN))
        .await
        .unwrap();
    reconcile(&ctx, "main").await.unwrap();
    let stored = get_number(&client, "main").await;
    let status = stored.status.clone().unwrap();
    assert!(
        is_condition_true(&status.conditions, "Ready"),
        "{:?}",
        status.conditions
    );
    assert_eq!(status.e164.as_deref(), Some("+14155550142"));
    assert_eq!(status.carrier, Some(switchboard_crds::CarrierKind::Twilio));
    let bought = twilio.numbers.lock().unwrap().clone();
    assert_eq!(bought.len(), 1);
    assert_eq!(
        bought[0]["friendly_name"].as_str(),
        status.idempotency_key.as_deref()
    );
    assert_eq!(
        bought[0]["voice_url"],
        "https://voice.example.com/api/v1/webhooks/twilio/voice"
    );
}

// ---- Interplay with the Tenant controller ---------------------------------------------------

#[tokio::test]
async fn the_tenant_status_counts_ready_numbers() {
    let sandbox = SandboxCarrier::in_memory();
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme", "plan": "starter"}))],
        vec![
            number("main", json!({})),
            number("blocked", json!({"areaCode": "212"})),
        ],
        Faults::default(),
    )
    .await;
    let ctx = operator(client.clone(), carriers_with(&sandbox));
    let tenants: Api<Tenant> = Api::all(client.clone());
    // As the controller would: its caches kept up to date by the watches.
    let reconcile_tenant = || async {
        ctx.caches.relist(&ctx.client).await.unwrap();
        let current = tenants.get("acme").await.unwrap();
        tenant::reconcile(Arc::new(current), ctx.clone()).await
    };
    reconcile_tenant().await.unwrap();
    reconcile_tenant().await.unwrap();
    assert_eq!(
        tenants
            .get("acme")
            .await
            .unwrap()
            .status
            .unwrap()
            .phone_numbers,
        0
    );
    reconcile_twice(&ctx, "main").await.unwrap();
    reconcile_twice(&ctx, "blocked").await.unwrap();
    reconcile_tenant().await.unwrap();
    assert_eq!(
        tenants
            .get("acme")
            .await
            .unwrap()
            .status
            .unwrap()
            .phone_numbers,
        1,
        "only Ready numbers count"
    );
}

// ---- Telnyx: asynchronous number orders --------------------------------------------------

const TELNYX_KEY: &str = "KEYacme";

#[derive(Default)]
struct FakeTelnyx {
    orders: Mutex<Vec<Value>>,
    numbers: Mutex<Vec<Value>>,
    patches: Mutex<Vec<Value>>,
    /// While true, orders stay pending and their numbers are not on the account yet.
    pending: AtomicBool,
}

impl FakeTelnyx {
    /// Completes every pending order: its numbers appear on the account (untagged, as Telnyx
    /// does not copy an order's customer_reference onto its numbers).
    fn fulfil(&self) {
        self.pending.store(false, Ordering::SeqCst);
        let mut numbers = self.numbers.lock().unwrap();
        for order in self.orders.lock().unwrap().iter_mut() {
            if order["status"] == "pending" {
                order["status"] = json!("success");
                let e164 = order["phone_numbers"][0]["phone_number"].clone();
                let id = format!("14{:08}", numbers.len() + 1);
                numbers.push(json!({"id": id, "phone_number": e164,
                                    "connection_id": null, "customer_reference": null}));
            }
        }
    }
}

fn telnyx_authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer KEYacme")
}

fn telnyx_unauthorised() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"errors": [{"code": "10009", "title": "Authentication failed"}]})),
    )
        .into_response()
}

async fn telnyx_available(headers: HeaderMap) -> Response {
    if !telnyx_authorised(&headers) {
        return telnyx_unauthorised();
    }
    Json(
        json!({"data": [{"record_type": "available_phone_number", "phone_number": "+13125550199",
                          "region_information": [{"region_type": "state", "region_name": "IL"}]}]}),
    )
    .into_response()
}

async fn telnyx_order(
    State(fake): State<Arc<FakeTelnyx>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !telnyx_authorised(&headers) {
        return telnyx_unauthorised();
    }
    let order = json!({"id": "order-1", "status": "pending", "customer_reference": body["customer_reference"],
                       "connection_id": body["connection_id"], "phone_numbers": body["phone_numbers"]});
    fake.orders.lock().unwrap().push(order.clone());
    if !fake.pending.load(Ordering::SeqCst) {
        fake.fulfil();
    }
    Json(json!({"data": order})).into_response()
}

async fn telnyx_orders(
    State(fake): State<Arc<FakeTelnyx>>,
    headers: HeaderMap,
    Query(q): Query<Pairs>,
) -> Response {
    if !telnyx_authorised(&headers) {
        return telnyx_unauthorised();
    }
    let tag = field(&q, "filter[customer_reference]")
        .unwrap_or_default()
        .to_owned();
    let orders: Vec<Value> = fake
        .orders
        .lock()
        .unwrap()
        .iter()
        .filter(|o| o["customer_reference"] == tag.as_str())
        .cloned()
        .collect();
    Json(json!({"data": orders})).into_response()
}

async fn telnyx_numbers(
    State(fake): State<Arc<FakeTelnyx>>,
    headers: HeaderMap,
    Query(q): Query<Pairs>,
) -> Response {
    if !telnyx_authorised(&headers) {
        return telnyx_unauthorised();
    }
    let found: Vec<Value> = fake
        .numbers
        .lock()
        .unwrap()
        .iter()
        .filter(|n| field(&q, "filter[phone_number]").is_none_or(|p| n["phone_number"] == p))
        .filter(|n| {
            field(&q, "filter[customer_reference]").is_none_or(|t| n["customer_reference"] == t)
        })
        .cloned()
        .collect();
    Json(json!({"data": found})).into_response()
}

async fn telnyx_number(
    State(fake): State<Arc<FakeTelnyx>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    if !telnyx_authorised(&headers) {
        return telnyx_unauthorised();
    }
    let mut numbers = fake.numbers.lock().unwrap();
    let Some(number) = numbers.iter_mut().find(|n| n["id"] == id.as_str()) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"errors": [{"code": "10005", "title": "Resource not found"}]})),
        )
            .into_response();
    };
    if let Some(Json(patch)) = body {
        fake.patches.lock().unwrap().push(patch.clone());
        for (k, v) in patch.as_object().unwrap() {
            number[k] = v.clone();
        }
    }
    Json(json!({"data": number})).into_response()
}

async fn fake_telnyx() -> (String, Arc<FakeTelnyx>) {
    let fake = Arc::new(FakeTelnyx::default());
    let app = Router::new()
        .route("/v2/available_phone_numbers", get(telnyx_available))
        .route(
            "/v2/number_orders",
            axum::routing::post(telnyx_order).get(telnyx_orders),
        )
        .route("/v2/phone_numbers", get(telnyx_numbers))
        .route(
            "/v2/phone_numbers/{id}",
            get(telnyx_number).patch(telnyx_number),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, fake)
}

fn telnyx_credentials() -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("telnyx-creds".into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        data: Some(
            [("apiKey", TELNYX_KEY), ("connectionId", "conn-acme")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

#[tokio::test]
async fn a_pending_telnyx_order_is_waited_for_and_adopted_never_reordered() {
    let (base, telnyx) = fake_telnyx().await;
    telnyx.pending.store(true, Ordering::SeqCst);
    let client = fake_api(
        vec![acme(
            json!({"displayName": "Acme", "carrier": {"kind": "telnyx", "credentialsSecretRef": "telnyx-creds"}}),
        )],
        vec![number("chicago", json!({"areaCode": "312"}))],
        Faults::default(),
    )
    .await;
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &telnyx_credentials())
        .await
        .unwrap();
    let ctx = operator(
        client.clone(),
        Carriers {
            telnyx_base_url: base,
            ..Carriers::default()
        },
    );

    // The order is accepted but not fulfilled yet: not Ready, still pending, retried.
    reconcile_twice(&ctx, "chicago").await.unwrap();
    let stored = get_number(&client, "chicago").await;
    assert_eq!(
        ready_reason(&stored),
        ("False".into(), "CarrierUnavailable".into())
    );
    assert!(
        stored
            .annotations()
            .contains_key("voice.switchboard.dev/external-create-pending")
    );
    // Retrying while the order is still pending must not order again.
    reconcile(&ctx, "chicago").await.unwrap();
    assert_eq!(telnyx.orders.lock().unwrap().len(), 1);

    telnyx.fulfil();
    reconcile(&ctx, "chicago").await.unwrap();
    let stored = get_number(&client, "chicago").await;
    let status = stored.status.clone().unwrap();
    assert!(
        is_condition_true(&status.conditions, "Ready"),
        "{:?}",
        status.conditions
    );
    assert_eq!(status.e164.as_deref(), Some("+13125550199"));
    assert_eq!(
        status.webhook_url.as_deref(),
        Some("https://voice.example.com/api/v1/webhooks/telnyx")
    );
    assert_eq!(
        telnyx.orders.lock().unwrap().len(),
        1,
        "ordered exactly once"
    );
    let key = &stored.annotations()["voice.switchboard.dev/idempotency-key"];
    assert_eq!(
        telnyx.orders.lock().unwrap()[0]["customer_reference"],
        key.as_str()
    );
    // The adopted number is tagged and routed to the tenant's connection.
    let number = telnyx.numbers.lock().unwrap()[0].clone();
    assert_eq!(number["customer_reference"], key.as_str());
    assert_eq!(number["connection_id"], "conn-acme");
}

#[tokio::test]
async fn a_restarted_operator_restores_its_in_memory_sandbox_from_the_objects() {
    let sandbox = SandboxCarrier::in_memory();
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme", "plan": "professional"}))],
        vec![number("main", json!({}))],
        Faults::default(),
    )
    .await;
    let first = operator(client.clone(), carriers_with(&sandbox));
    reconcile_twice(&first, "main").await.unwrap();
    let e164 = get_number(&client, "main")
        .await
        .status
        .unwrap()
        .e164
        .unwrap();

    // A new process with a fresh, empty in-memory sandbox.
    let fresh = SandboxCarrier::in_memory();
    let restarted = operator(client.clone(), carriers_with(&fresh));
    assert_eq!(phone_number::restore_sandbox(&restarted).await.unwrap(), 1);
    reconcile(&restarted, "main").await.unwrap();
    let status = get_number(&client, "main").await.status.unwrap();
    assert!(
        is_condition_true(&status.conditions, "Ready"),
        "{:?}",
        status.conditions
    );
    assert_eq!(fresh.purchase_count(), 0, "restored, not bought");

    // The restored number is not handed out again.
    Api::<PhoneNumber>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &number("second", json!({})))
        .await
        .unwrap();
    reconcile_twice(&restarted, "second").await.unwrap();
    let second = get_number(&client, "second")
        .await
        .status
        .unwrap()
        .e164
        .unwrap();
    assert_ne!(second, e164);
}
