//! The Campaign controller against an in-memory Kubernetes API and a local stand-in for the
//! gateway's internal API (axum on 127.0.0.1:0, speaking the documented contract).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use support::{WriteCounter, context_with_gateway, fake_api_seeded};
use switchboard_crds::conditions::{find_condition, is_condition_true};
use switchboard_crds::{Campaign, CampaignPhase, Tenant};
use switchboard_operator::controllers::{Context, Error, campaign};
use switchboard_operator::gateway_client::GatewayError;

const NS: &str = "tenant-acme";
const TOKEN: &str = "internal-test-token";
const CSV: &str = "phone,name\n+14155550101,Ada\n+14155550102,Grace\nnot-a-number,Alan\n";
const CAMPAIGN_PATH: &str = "/internal/v1/tenants/acme/campaigns/survey";

/// One request the gateway received.
#[derive(Clone, Debug)]
struct Received {
    method: Method,
    path: String,
    body: Value,
}

/// The gateway stand-in: records requests, keeps the registered campaigns, answers progress.
#[derive(Clone, Default)]
struct Gateway {
    received: Arc<Mutex<Vec<Received>>>,
    registered: Arc<Mutex<bool>>,
    progress: Arc<Mutex<Value>>,
    reject_with: Arc<Mutex<Option<Value>>>,
}

impl Gateway {
    fn requests(&self, method: Method) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method)
            .cloned()
            .collect()
    }

    fn set_progress(&self, progress: Value) {
        *self.progress.lock().unwrap() = progress;
    }
}

async fn handle(
    State(gateway): State<Gateway>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let expected = format!("Bearer {TOKEN}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"code": "unauthorized", "message": "bad token"}})),
        )
            .into_response();
    }
    let path = uri.path().to_owned();
    gateway.received.lock().unwrap().push(Received {
        method: method.clone(),
        path: path.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let progress_path = format!("{CAMPAIGN_PATH}/progress");
    match (method, path.as_str()) {
        (Method::PUT, CAMPAIGN_PATH) => {
            if let Some(error) = gateway.reject_with.lock().unwrap().clone() {
                return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(error)).into_response();
            }
            *gateway.registered.lock().unwrap() = true;
            axum::Json(json!({
                "registered": true,
                "contacts": 2,
                "rejected": [{"row": 4, "error": "not an E.164 number"}]
            }))
            .into_response()
        }
        (Method::GET, p) if p == progress_path => {
            if !*gateway.registered.lock().unwrap() {
                return StatusCode::NOT_FOUND.into_response();
            }
            axum::Json(gateway.progress.lock().unwrap().clone()).into_response()
        }
        (Method::DELETE, CAMPAIGN_PATH) => {
            *gateway.registered.lock().unwrap() = false;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Starts the stand-in gateway; returns it and its base URL.
async fn start_gateway() -> (Gateway, String) {
    let gateway = Gateway::default();
    gateway.set_progress(json!({
        "phase": "Running", "total": 2, "pending": 1, "inProgress": 1,
        "completed": 0, "failed": 0, "noAnswer": 0
    }));
    let app = Router::new().fallback(handle).with_state(gateway.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (gateway, url)
}

fn tenant(spec: Value) -> Tenant {
    support::tenant("acme", spec)
}

fn starter() -> Tenant {
    tenant(json!({"displayName": "Acme", "plan": "starter"}))
}

fn ready_number() -> Value {
    json!({
        "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
        "metadata": {"name": "main", "namespace": NS},
        "spec": {"areaCode": "415"},
        "status": {
            "e164": "+15550100",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "owned",
                            "lastTransitionTime": "2026-11-01T00:00:00Z"}]
        }
    })
}

fn contacts_config_map() -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "survey-contacts", "namespace": NS},
        "data": {"contacts.csv": CSV}
    })
}

/// A Campaign manifest; `overrides` are merged into its spec.
fn campaign_manifest(overrides: Value) -> Value {
    let mut spec = json!({
        "fromNumber": "main",
        "contacts": {"configMapRef": {"name": "survey-contacts", "key": "contacts.csv"}},
        "schedule": {"timeZone": "America/Los_Angeles", "windowStart": "10:00", "windowEnd": "18:00"},
        "pacing": {"maxConcurrent": 3, "callsPerMinute": 6}
    });
    for (key, value) in overrides.as_object().unwrap() {
        spec[key] = value.clone();
    }
    json!({
        "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Campaign",
        "metadata": {"name": "survey", "namespace": NS},
        "spec": spec
    })
}

async fn get_campaign(client: &Client) -> Option<Campaign> {
    Api::<Campaign>::namespaced(client.clone(), NS)
        .get_opt("survey")
        .await
        .unwrap()
}

async fn reconcile(ctx: &Arc<Context>) -> Result<Action, Error> {
    let current = get_campaign(&ctx.client).await.expect("campaign exists");
    campaign::reconcile(Arc::new(current), ctx.clone()).await
}

/// The fake API and a context pointing at a fresh stand-in gateway.
async fn setup(tenants: Vec<Tenant>, objects: Vec<Value>) -> (Arc<Context>, Gateway, WriteCounter) {
    let writes = WriteCounter::default();
    let client = fake_api_seeded(tenants, objects, writes.clone()).await;
    let (gateway, url) = start_gateway().await;
    (context_with_gateway(client, &url, TOKEN), gateway, writes)
}

/// First reconcile adds the finalizer, the second registers.
async fn reconcile_until_registered(ctx: &Arc<Context>) -> Action {
    reconcile(ctx).await.expect("finalizer added");
    reconcile(ctx).await.expect("registered")
}

/// The standard valid campaign, registered (finalizer added, then PUT to the gateway).
async fn registered_survey() -> (Arc<Context>, Gateway) {
    let (ctx, gateway, _) = setup(
        vec![starter()],
        vec![
            ready_number(),
            contacts_config_map(),
            campaign_manifest(json!({})),
        ],
    )
    .await;
    reconcile_until_registered(&ctx).await;
    (ctx, gateway)
}

fn condition(campaign: &Campaign, type_: &str) -> (String, String, String) {
    let status = campaign.status.as_ref().expect("status");
    let c = find_condition(&status.conditions, type_).expect("condition");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

#[tokio::test]
async fn a_valid_campaign_is_registered_and_its_progress_mirrored() {
    let (ctx, gateway, writes) = setup(
        vec![starter()],
        vec![
            ready_number(),
            contacts_config_map(),
            campaign_manifest(json!({})),
        ],
    )
    .await;

    let action = reconcile_until_registered(&ctx).await;
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(15)),
        "Running: mirror often"
    );

    let stored = get_campaign(&ctx.client).await.unwrap();
    assert!(
        stored
            .finalizers()
            .contains(&campaign::FINALIZER.to_owned())
    );
    let puts = gateway.requests(Method::PUT);
    assert_eq!(puts.len(), 1);
    let body = &puts[0].body;
    assert_eq!(body["namespace"], NS);
    assert_eq!(body["uid"], stored.metadata.uid.clone().unwrap());
    assert_eq!(body["generation"], stored.metadata.generation.unwrap());
    assert_eq!(body["fromNumber"], "+15550100");
    assert_eq!(body["contactsCsv"], CSV);
    assert_eq!(body["spec"]["pacing"]["maxConcurrent"], 3);
    assert_eq!(body["spec"]["schedule"]["timeZone"], "America/Los_Angeles");
    assert_eq!(body["spec"]["suspend"], false);

    let status = stored.status.clone().unwrap();
    assert_eq!(status.phase, CampaignPhase::Running);
    assert_eq!(
        (status.total, status.pending, status.in_progress),
        (2, 1, 1)
    );
    assert_eq!(status.progress.as_deref(), Some("0%"));
    assert_eq!(status.observed_generation, stored.metadata.generation);
    assert!(is_condition_true(&status.conditions, "Valid"));
    let (ready, reason, message) = condition(&stored, "Ready");
    assert_eq!((ready.as_str(), reason.as_str()), ("True", "Registered"));
    assert_eq!(
        message,
        "registered with the gateway: 2 contacts accepted, 1 rejected (row 4: not an E.164 number)"
    );

    // The dialer moves on: the next reconcile mirrors it without registering again.
    gateway.set_progress(json!({
        "phase": "Completed", "total": 2, "pending": 0, "inProgress": 0,
        "completed": 1, "failed": 0, "noAnswer": 1
    }));
    let action = reconcile(&ctx).await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    assert_eq!(
        gateway.requests(Method::PUT).len(),
        1,
        "same generation: no PUT"
    );
    let status = get_campaign(&ctx.client).await.unwrap().status.unwrap();
    assert_eq!(status.phase, CampaignPhase::Completed);
    assert_eq!((status.completed, status.no_answer), (1, 1));
    assert_eq!(status.progress.as_deref(), Some("100%"));

    // Nothing changed: no status write.
    let before = writes.get();
    reconcile(&ctx).await.unwrap();
    assert_eq!(writes.get(), before, "unchanged progress writes nothing");
}

#[tokio::test]
async fn contacts_in_a_secret_and_uploaded_contacts_are_sent_as_such() {
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "private-contacts", "namespace": NS},
        "data": {"list.csv": "cGhvbmUKKzE0MTU1NTUwMTAxCg=="}  // "phone\n+14155550101\n"
    });
    let manifest = campaign_manifest(
        json!({"contacts": {"secretRef": {"name": "private-contacts", "key": "list.csv"}}}),
    );
    let (ctx, gateway, _) = setup(vec![starter()], vec![ready_number(), secret, manifest]).await;
    reconcile_until_registered(&ctx).await;
    assert_eq!(
        gateway.requests(Method::PUT)[0].body["contactsCsv"],
        "phone\n+14155550101\n"
    );

    let uploaded = campaign_manifest(json!({"contacts": {"uploaded": true}}));
    let (ctx, gateway, _) = setup(vec![starter()], vec![ready_number(), uploaded]).await;
    reconcile_until_registered(&ctx).await;
    let body = &gateway.requests(Method::PUT)[0].body;
    assert!(body.as_object().unwrap().contains_key("contactsCsv"));
    assert!(body["contactsCsv"].is_null(), "null when uploaded: {body}");
}

#[tokio::test]
async fn validation_failures_become_conditions_and_nothing_is_registered() {
    let unready_number = json!({
        "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
        "metadata": {"name": "main", "namespace": NS},
        "spec": {"areaCode": "415"}
    });
    let cases: Vec<(&str, Tenant, Vec<Value>, &str, CampaignPhase)> = vec![
        (
            "number not ready",
            starter(),
            vec![
                unready_number,
                contacts_config_map(),
                campaign_manifest(json!({})),
            ],
            "NumberNotReady",
            CampaignPhase::Pending,
        ),
        (
            "number missing",
            starter(),
            vec![contacts_config_map(), campaign_manifest(json!({}))],
            "NumberNotReady",
            CampaignPhase::Pending,
        ),
        (
            "tenant suspended",
            tenant(json!({"displayName": "Acme", "plan": "starter", "suspended": true})),
            vec![
                ready_number(),
                contacts_config_map(),
                campaign_manifest(json!({})),
            ],
            "TenantSuspended",
            CampaignPhase::Paused,
        ),
        (
            "free plan",
            tenant(json!({"displayName": "Acme", "plan": "free"})),
            vec![
                ready_number(),
                contacts_config_map(),
                campaign_manifest(json!({})),
            ],
            "PlanDisallowsCampaigns",
            CampaignPhase::Failed,
        ),
        (
            "unknown time zone",
            starter(),
            vec![
                ready_number(),
                contacts_config_map(),
                campaign_manifest(json!({"schedule": {"timeZone": "Mars/Olympus_Mons"}})),
            ],
            "InvalidSchedule",
            CampaignPhase::Failed,
        ),
        (
            "pacing above the runtime's capacity",
            tenant(json!({"displayName": "Acme", "plan": "starter",
                          "runtime": {"replicas": 2, "maxConcurrentCalls": 10}})),
            vec![
                ready_number(),
                contacts_config_map(),
                campaign_manifest(json!({"pacing": {"maxConcurrent": 21, "callsPerMinute": 5}})),
            ],
            "InvalidPacing",
            CampaignPhase::Failed,
        ),
        (
            "contacts ConfigMap missing",
            starter(),
            vec![ready_number(), campaign_manifest(json!({}))],
            "ContactsMissing",
            CampaignPhase::Pending,
        ),
    ];
    for (name, tenant, objects, reason, phase) in cases {
        let (ctx, gateway, _) = setup(vec![tenant], objects).await;
        reconcile(&ctx).await.expect("finalizer added");
        let action = reconcile(&ctx)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let stored = get_campaign(&ctx.client).await.unwrap();
        let (valid, got_reason, message) = condition(&stored, "Valid");
        assert_eq!(
            (valid.as_str(), got_reason.as_str()),
            ("False", reason),
            "{name}: {message}"
        );
        let (ready, ready_reason, _) = condition(&stored, "Ready");
        assert_eq!(
            (ready.as_str(), ready_reason.as_str()),
            ("False", "Invalid"),
            "{name}"
        );
        assert_eq!(stored.status.as_ref().unwrap().phase, phase, "{name}");
        assert!(
            gateway.requests(Method::PUT).is_empty(),
            "{name}: not registered"
        );
        let expected = if phase == CampaignPhase::Pending {
            30
        } else {
            300
        };
        assert_eq!(
            action,
            Action::requeue(Duration::from_secs(expected)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_campaign_outside_a_tenant_namespace_is_invalid() {
    let mut manifest = campaign_manifest(json!({"contacts": {"uploaded": true}}));
    manifest["metadata"]["namespace"] = json!("default");
    let (ctx, gateway, _) = setup(vec![starter()], vec![manifest]).await;
    let campaigns: Api<Campaign> = Api::namespaced(ctx.client.clone(), "default");
    for _ in 0..2 {
        let current = campaigns.get("survey").await.unwrap();
        campaign::reconcile(Arc::new(current), ctx.clone())
            .await
            .unwrap();
    }
    let stored = campaigns.get("survey").await.unwrap();
    assert_eq!(condition(&stored, "Valid").1, "TenantNotFound");
    assert!(
        gateway.received.lock().unwrap().is_empty(),
        "no tenant, no gateway call"
    );
}

#[tokio::test]
async fn suspend_is_passed_through_as_a_new_generation() {
    let (ctx, gateway) = registered_survey().await;
    let first_generation = gateway.requests(Method::PUT)[0].body["generation"]
        .as_i64()
        .unwrap();

    Api::<Campaign>::namespaced(ctx.client.clone(), NS)
        .patch(
            "survey",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"suspend": true}})),
        )
        .await
        .unwrap();
    gateway.set_progress(json!({
        "phase": "Paused", "total": 2, "pending": 2, "inProgress": 0,
        "completed": 0, "failed": 0, "noAnswer": 0
    }));
    reconcile(&ctx).await.unwrap();

    let puts = gateway.requests(Method::PUT);
    assert_eq!(puts.len(), 2, "the new generation is registered");
    assert_eq!(puts[1].body["spec"]["suspend"], true);
    assert!(puts[1].body["generation"].as_i64().unwrap() > first_generation);
    let stored = get_campaign(&ctx.client).await.unwrap();
    let status = stored.status.clone().unwrap();
    assert_eq!(status.phase, CampaignPhase::Paused);
    assert_eq!(status.observed_generation, stored.metadata.generation);
    assert!(
        gateway.requests(Method::DELETE).is_empty(),
        "suspending is not deleting"
    );
}

#[tokio::test]
async fn a_suspended_tenant_stops_dialing_until_resumed() {
    let (ctx, gateway) = registered_survey().await;
    let tenants: Api<Tenant> = Api::all(ctx.client.clone());
    let suspend = |suspended: bool| {
        let tenants = tenants.clone();
        async move {
            tenants
                .patch(
                    "acme",
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"spec": {"suspended": suspended}})),
                )
                .await
                .unwrap();
        }
    };

    suspend(true).await;
    reconcile(&ctx).await.unwrap();
    reconcile(&ctx).await.unwrap();
    let deletes = gateway.requests(Method::DELETE);
    assert_eq!(
        deletes.len(),
        1,
        "stopped once, on entering the invalid state"
    );
    assert_eq!(deletes[0].path, CAMPAIGN_PATH);
    let stored = get_campaign(&ctx.client).await.unwrap();
    assert_eq!(condition(&stored, "Valid").1, "TenantSuspended");
    let status = stored.status.unwrap();
    assert_eq!(status.phase, CampaignPhase::Paused);
    assert_eq!(status.total, 2, "last known counts kept");

    suspend(false).await;
    reconcile(&ctx).await.unwrap();
    assert_eq!(gateway.requests(Method::PUT).len(), 2, "registered again");
    let stored = get_campaign(&ctx.client).await.unwrap();
    assert!(is_condition_true(
        &stored.status.unwrap().conditions,
        "Ready"
    ));
}

#[tokio::test]
async fn gateway_problems_are_visible_in_the_status() {
    // A wrong token: the gateway answers 401, the reconcile fails (backoff) and says why.
    let writes = WriteCounter::default();
    let client = fake_api_seeded(
        vec![starter()],
        vec![
            ready_number(),
            contacts_config_map(),
            campaign_manifest(json!({})),
        ],
        writes,
    )
    .await;
    let (gateway, url) = start_gateway().await;
    let ctx = context_with_gateway(client, &url, "wrong-token");
    reconcile(&ctx).await.unwrap();
    let result = reconcile(&ctx).await;
    assert!(
        matches!(result, Err(Error::Gateway(GatewayError::Unauthorized(401)))),
        "{result:?}"
    );
    assert!(
        gateway.received.lock().unwrap().is_empty(),
        "nothing accepted without the token"
    );
    let stored = get_campaign(&ctx.client).await.unwrap();
    let (ready, reason, message) = condition(&stored, "Ready");
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "GatewayUnavailable")
    );
    assert!(message.contains("token"), "{message}");
    assert!(is_condition_true(
        &stored.status.unwrap().conditions,
        "Valid"
    ));

    // A refusal (4xx with the documented error body) waits for an edit instead.
    let (ctx, gateway, _) = setup(
        vec![starter()],
        vec![
            ready_number(),
            contacts_config_map(),
            campaign_manifest(json!({})),
        ],
    )
    .await;
    *gateway.reject_with.lock().unwrap() = Some(json!({"error": {
        "code": "invalid_schedule", "message": "window too short", "field": "spec.schedule"}}));
    let action = reconcile_until_registered(&ctx).await;
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    let stored = get_campaign(&ctx.client).await.unwrap();
    let (ready, reason, message) = condition(&stored, "Ready");
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "GatewayRejected")
    );
    assert_eq!(
        message,
        "gateway rejected the request: window too short (field spec.schedule)"
    );
}

#[tokio::test]
async fn deleting_a_campaign_stops_dialing_before_it_goes() {
    let mut doomed = campaign_manifest(json!({"contacts": {"uploaded": true}}));
    doomed["metadata"]["finalizers"] = json!([campaign::FINALIZER]);
    doomed["metadata"]["deletionTimestamp"] = json!("2026-11-21T00:00:00Z");

    // Gateway unreachable: the finalizer holds the campaign.
    let client = fake_api_seeded(
        vec![starter()],
        vec![doomed.clone()],
        WriteCounter::default(),
    )
    .await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let ctx = context_with_gateway(client, &dead_url, TOKEN);
    let result = reconcile(&ctx).await;
    assert!(
        matches!(result, Err(Error::Gateway(GatewayError::Transport(_)))),
        "{result:?}"
    );
    let held = get_campaign(&ctx.client)
        .await
        .expect("held by the finalizer");
    assert!(held.finalizers().contains(&campaign::FINALIZER.to_owned()));

    // Gateway reachable: DELETE, then the finalizer goes and so does the campaign.
    let (ctx, gateway, _) = setup(vec![starter()], vec![doomed]).await;
    assert_eq!(reconcile(&ctx).await.unwrap(), Action::await_change());
    let deletes = gateway.requests(Method::DELETE);
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].path, CAMPAIGN_PATH);
    assert!(
        get_campaign(&ctx.client).await.is_none(),
        "finalizer removed, campaign gone"
    );
}

async fn campaign_scripts(client: &Client) -> Value {
    let config_map = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), NS)
        .get("switchboard-agent")
        .await
        .expect("agent ConfigMap written");
    let data = config_map.data.expect("data");
    serde_json::from_str(&data["campaigns.json"]).unwrap()
}

#[tokio::test]
async fn campaign_scripts_reach_the_runtime_config_and_leave_with_the_campaign() {
    let survey = json!({"greeting": "Hi, two quick questions.", "questions": [
        {"field": "rating", "text": "From 1 to 5, how was it?", "answerType": "number"}]});
    let (ctx, _gateway, _) = setup(
        vec![starter()],
        vec![
            ready_number(),
            contacts_config_map(),
            campaign_manifest(json!({"agent": survey})),
            // The Tenant controller's part of the ConfigMap, which must survive.
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "switchboard-agent", "namespace": NS},
                "data": {"agent.json": "{}"}}),
        ],
    )
    .await;
    reconcile_until_registered(&ctx).await;
    let scripts = campaign_scripts(&ctx.client).await;
    assert_eq!(scripts["survey"]["greeting"], "Hi, two quick questions.");
    assert_eq!(scripts["survey"]["questions"][0]["field"], "rating");
    let config_map =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(ctx.client.clone(), NS)
            .get("switchboard-agent")
            .await
            .unwrap();
    assert_eq!(config_map.data.unwrap()["agent.json"], "{}");

    // Deleting the campaign removes its script before the finalizer goes.
    let mut doomed = campaign_manifest(json!({"agent": survey, "contacts": {"uploaded": true}}));
    doomed["metadata"]["finalizers"] = json!([campaign::FINALIZER]);
    doomed["metadata"]["deletionTimestamp"] = json!("2026-11-21T00:00:00Z");
    let (ctx, _gateway, _) = setup(
        vec![starter()],
        vec![
            doomed,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "switchboard-agent", "namespace": NS},
                "data": {"agent.json": "{}", "campaigns.json": scripts.to_string()}}),
        ],
    )
    .await;
    assert_eq!(reconcile(&ctx).await.unwrap(), Action::await_change());
    assert_eq!(campaign_scripts(&ctx.client).await, json!({}));
}

#[tokio::test]
async fn an_edited_contacts_config_map_registers_the_contacts_again() {
    let (ctx, gateway) = registered_survey().await;
    reconcile(&ctx).await.unwrap();
    assert_eq!(
        gateway.requests(Method::PUT).len(),
        1,
        "unchanged: no re-registration"
    );

    let edited = "phone,name\n+14155550101,Ada\n+14155550199,Barbara\n";
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(ctx.client.clone(), NS)
        .patch(
            "survey-contacts",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"contacts.csv": edited}})),
        )
        .await
        .unwrap();
    reconcile(&ctx).await.unwrap();
    let puts = gateway.requests(Method::PUT);
    assert_eq!(puts.len(), 2, "the edit is registered");
    assert_eq!(puts[1].body["contactsCsv"], edited);
    let stored = get_campaign(&ctx.client).await.unwrap();
    assert!(
        stored
            .status
            .unwrap()
            .registered_contacts
            .unwrap()
            .starts_with("sha256:")
    );
    reconcile(&ctx).await.unwrap();
    assert_eq!(gateway.requests(Method::PUT).len(), 2, "and only once");
}
