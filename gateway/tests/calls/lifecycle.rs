//! The data lifecycle (issue 19) on both backends: retention removes what is older and nothing
//! else; the platform admins suspend (calls refused), resume and override; a tenant deletion
//! releases its numbers and, after the grace period, leaves no personal data in any table
//! (walked from the schema); an account deletion anonymises the person everywhere; exports
//! hold every kind and nothing of another tenant; a master-key rotation re-encrypts.

use std::io::Read;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::AnyPool;
use switchboard_carriers::SandboxCarrier;
use switchboard_gateway::calls::admission::SUSPENDED_MESSAGE;
use switchboard_gateway::kube::KubeSync;
use switchboard_gateway::lifecycle;
use switchboard_gateway::mailer::MemoryMailer;
use switchboard_gateway::store::audit::{self, AuditEvent};
use switchboard_gateway::store::calls::{self, CallRow};
use switchboard_gateway::store::{Scope, now_ms, users};
use switchboard_gateway::{AppState, app};

use crate::harness::{INTERNAL_TOKEN, SANDBOX_TOKEN, TWILIO_TOKEN, Tenant, TestApp, apps};

const ADMIN_EMAIL: &str = "root@platform.test";
const DAY: i64 = 24 * 3600 * 1000;

fn lifecycle_args() -> Vec<String> {
    [
        "--platform-admins",
        ADMIN_EMAIL,
        "--lifecycle-worker",
        "false",
        "--deletion-grace-hours",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn verify(app: &TestApp, email: &str) {
    let mut tx = app.state.store.write(&Scope::none()).await.unwrap();
    let user = users::by_email(&mut tx, email).await.unwrap().unwrap();
    users::mark_verified(&mut tx, &user.id, now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn user_id(app: &TestApp, email: &str) -> String {
    let mut tx = app.state.store.read(&Scope::none()).await.unwrap();
    let user = users::by_email(&mut tx, email).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    user.id
}

async fn insert_call(
    app: &TestApp,
    tenant: &str,
    id: &str,
    started_at: i64,
    from: &str,
    text: &str,
) {
    let mut tx = app.state.store.write(&Scope::tenant(tenant)).await.unwrap();
    calls::insert_or_get(
        &mut tx,
        &CallRow {
            id: id.to_owned(),
            tenant_id: tenant.to_owned(),
            carrier: "twilio".into(),
            carrier_call_id: Some(format!("CA-{id}")),
            direction: "inbound".into(),
            from_number: Some(from.to_owned()),
            to_number: Some("+15550999".into()),
            status: "completed".into(),
            started_at,
            ended_at: Some(started_at + 60_000),
            source: "carrier".into(),
            updated_at: started_at,
            ..CallRow::default()
        },
    )
    .await
    .unwrap();
    calls::insert_turn(&mut tx, tenant, id, 0, "caller", text, 100)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn insert_audit(app: &TestApp, tenant: &str, action: &str, at: i64) {
    let mut tx = app.state.store.write(&Scope::tenant(tenant)).await.unwrap();
    audit::record(
        &mut tx,
        &AuditEvent {
            tenant_id: tenant,
            actor_type: "system",
            actor_id: None,
            action,
            target_type: None,
            target_id: None,
            ip: None,
            request_id: None,
            details: json!({}),
        },
        at,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn scalar(pool: &AnyPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn ids(pool: &AnyPool, sql: &str) -> Vec<String> {
    let mut ids: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
    ids.sort();
    ids
}

/// Every table of the schema (migrations' bookkeeping aside) with each row as one text.
async fn every_row(app: &TestApp, pool: &AnyPool) -> Vec<(String, String)> {
    let (tables_sql, columns_sql) = if app.backend == "postgres" {
        (
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
        )
    } else {
        (
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            "SELECT name FROM pragma_table_info($1)",
        )
    };
    let tables: Vec<String> = sqlx::query_scalar(tables_sql)
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(tables.len() > 20, "schema walk found {tables:?}");
    let mut rows = Vec::new();
    for table in tables.into_iter().filter(|t| t != "_sqlx_migrations") {
        let columns: Vec<String> = sqlx::query_scalar(columns_sql)
            .bind(&table)
            .fetch_all(pool)
            .await
            .unwrap();
        let concat = columns
            .iter()
            .map(|c| format!("COALESCE(CAST({c} AS TEXT), '')"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let texts: Vec<String> = sqlx::query_scalar(&format!("SELECT {concat} FROM {table}"))
            .fetch_all(pool)
            .await
            .unwrap();
        rows.extend(texts.into_iter().map(|t| (table.clone(), t)));
    }
    rows
}

fn assert_absent(rows: &[(String, String)], markers: &[&str], except_table: Option<&str>) {
    for (table, row) in rows {
        if Some(table.as_str()) == except_table {
            continue;
        }
        for marker in markers {
            assert!(
                !row.contains(marker),
                "table {table} still holds {marker:?}: {row}"
            );
        }
    }
}

fn call_id_of(twiml: &str) -> String {
    let start = twiml.find("name=\"callId\" value=\"").unwrap() + "name=\"callId\" value=\"".len();
    twiml[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn retention_removes_what_is_older_and_nothing_else() {
    for app in apps("retention", &lifecycle_args()).await {
        println!("retention: backend {}", app.backend);
        let a = app.signup("keep-a@example.com", "Keep A").await;
        let b = app.signup("keep-b@example.com", "Keep B").await;
        let path = format!("/api/v1/tenants/{}/retention", a.slug);
        // Defaults capped by the free plan (30 days).
        let shown = app.json(Method::GET, &path, Some(&a.access), None).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
        assert_eq!(
            shown.body["effective"],
            json!({"callsDays": 30, "transcriptsDays": 30, "recordingsDays": 30, "auditDays": 30})
        );
        assert_eq!(shown.body["defaults"]["transcriptsDays"], 90);
        assert_eq!(shown.body["planCapDays"], 30);
        let bad = app
            .json(
                Method::PUT,
                &path,
                Some(&a.access),
                Some(json!({"callsDays": 0})),
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
        assert_eq!(bad.body["error"]["field"], "callsDays");
        let set = app
            .json(
                Method::PUT,
                &path,
                Some(&a.access),
                Some(json!({"callsDays": 10, "transcriptsDays": 5, "auditDays": 400})),
            )
            .await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.text);
        // 400 audit days are kept as set but enforced at the plan's cap.
        assert_eq!(set.body["settings"]["auditDays"], 400);
        assert_eq!(
            set.body["effective"],
            json!({"callsDays": 10, "transcriptsDays": 5, "recordingsDays": 10, "auditDays": 30})
        );

        let now = now_ms();
        // Tenant A: 10 days of calls, 5 of transcripts, 30 of audit.
        insert_call(&app, &a.id, "a-old", now - 11 * DAY, "+1700", "old words").await;
        insert_call(&app, &a.id, "a-mid", now - 7 * DAY, "+1701", "mid words").await;
        insert_call(&app, &a.id, "a-new", now - DAY, "+1702", "new words").await;
        insert_audit(&app, &a.id, "test.old", now - 31 * DAY).await;
        insert_audit(&app, &a.id, "test.recent", now - 29 * DAY).await;
        // Tenant B: the defaults (30 days on the free plan).
        insert_call(&app, &b.id, "b-old", now - 31 * DAY, "+1800", "b old").await;
        insert_call(&app, &b.id, "b-kept", now - 11 * DAY, "+1801", "b kept").await;
        insert_audit(&app, &b.id, "test.old", now - 31 * DAY).await;
        insert_audit(&app, &b.id, "test.recent", now - 11 * DAY).await;

        let removed = lifecycle::retention::enforce_all(&app.state, now)
            .await
            .unwrap();
        assert_eq!(removed.calls, 2, "{removed:?}");
        let pool = app.admin_pool().await;
        assert_eq!(
            ids(&pool, "SELECT id FROM calls").await,
            ["a-mid", "a-new", "b-kept"]
        );
        assert_eq!(
            ids(&pool, "SELECT call_id FROM call_turns").await,
            ["a-new", "b-kept"]
        );
        let audit_a = ids(
            &pool,
            &format!(
                "SELECT action FROM audit_log WHERE tenant_id = '{}' AND action LIKE 'test.%'",
                a.id
            ),
        )
        .await;
        assert_eq!(audit_a, ["test.recent"]);
        let audit_b = ids(
            &pool,
            &format!(
                "SELECT action FROM audit_log WHERE tenant_id = '{}' AND action LIKE 'test.%'",
                b.id
            ),
        )
        .await;
        assert_eq!(audit_b, ["test.recent"]);
        // Signup's own audit entries (today) are untouched.
        assert!(
            scalar(
                &pool,
                "SELECT COUNT(*) FROM audit_log WHERE action NOT LIKE 'test.%'"
            )
            .await
                > 0
        );
        // A second pass removes nothing more.
        let again = lifecycle::retention::enforce_all(&app.state, now)
            .await
            .unwrap();
        assert_eq!(again, Default::default());
        if app.backend == "postgres" {
            pool.close().await;
        }
        app.finish().await;
    }
}

async fn voice(app: &TestApp, token: &str, sid: &str, to: &str) -> String {
    app.twilio_post(
        "/api/v1/webhooks/twilio/voice",
        token,
        &[("CallSid", sid), ("From", "+17775550123"), ("To", to)],
    )
    .await
    .text
}

#[tokio::test]
async fn platform_admins_list_suspend_resume_override_and_see_health() {
    for app in apps("platform_admin", &lifecycle_args()).await {
        println!("platform_admin: backend {}", app.backend);
        let a = app.signup("owner-a@example.com", "Admin A").await;
        let b = app.signup("owner-b@example.com", "Admin B").await;
        app.route_number("+15550700", &a.id, "twilio", "platform")
            .await;
        // Not an admin: a tenant owner, and the listed address before it is verified.
        let root = app.signup(ADMIN_EMAIL, "Platform Ops").await;
        for token in [&a.access, &root.access] {
            let refused = app
                .json(Method::GET, "/api/v1/admin/tenants", Some(token), None)
                .await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
            assert_eq!(refused.body["error"]["code"], "platform_admin_required");
        }
        verify(&app, ADMIN_EMAIL).await;
        let token = Some(root.access.as_str());

        let page = app
            .json(Method::GET, "/api/v1/admin/tenants?limit=2", token, None)
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
        let cursor = page.body["nextCursor"].as_str().unwrap().to_owned();
        let rest = app
            .json(
                Method::GET,
                &format!("/api/v1/admin/tenants?limit=2&cursor={cursor}"),
                token,
                None,
            )
            .await;
        assert_eq!(
            rest.body["items"].as_array().unwrap().len(),
            1,
            "{}",
            rest.text
        );
        assert!(rest.body["nextCursor"].is_null());

        // Suspended: the call is refused politely; resumed: connected.
        let suspended = app
            .json(
                Method::POST,
                &format!("/api/v1/admin/tenants/{}/suspend", a.slug),
                token,
                None,
            )
            .await;
        assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.text);
        assert_eq!(suspended.body["suspended"], true);
        let refused = voice(&app, TWILIO_TOKEN, "CAsusp1", "+15550700").await;
        assert!(refused.contains(SUSPENDED_MESSAGE), "{refused}");
        let shown = app
            .json(Method::GET, "/api/v1/admin/tenants", token, None)
            .await;
        let listed = shown.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["slug"] == a.slug.as_str())
            .unwrap()
            .clone();
        assert_eq!(listed["status"], "suspended");
        assert_eq!(listed["suspendedByAdmin"], true);
        let resumed = app
            .json(
                Method::POST,
                &format!("/api/v1/admin/tenants/{}/resume", a.id),
                token,
                None,
            )
            .await;
        assert_eq!(resumed.body["suspended"], false, "{}", resumed.text);
        let connected = voice(&app, TWILIO_TOKEN, "CAsusp2", "+15550700").await;
        assert!(connected.contains("<Connect>"), "{connected}");

        // Plan and limit overrides: the limits answer reflects them.
        let bad = app
            .json(
                Method::PATCH,
                &format!("/api/v1/admin/tenants/{}", b.slug),
                token,
                Some(json!({"plan": "gold"})),
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        let changed = app
            .json(
                Method::PATCH,
                &format!("/api/v1/admin/tenants/{}", b.slug),
                token,
                Some(json!({"plan": "professional", "limits": {"monthlyCalls": 7}})),
            )
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
        assert_eq!(changed.body["plan"], "professional");
        let usage = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/usage", b.slug),
                Some(&b.access),
                None,
            )
            .await;
        assert_eq!(usage.body["limits"]["monthlyCalls"], 7, "{}", usage.text);
        assert_eq!(usage.body["plan"], "professional", "{}", usage.text);

        // Health: the database answers, Kubernetes is not configured here.
        app.json(
            Method::POST,
            &format!("/api/v1/admin/tenants/{}/suspend", b.slug),
            token,
            None,
        )
        .await;
        let health = app
            .json(Method::GET, "/api/v1/admin/health", token, None)
            .await;
        assert_eq!(health.status, StatusCode::OK, "{}", health.text);
        assert_eq!(health.body["ok"], true);
        assert_eq!(health.body["database"]["ok"], true);
        // Redis when the environment names one (CI does): then it must answer.
        let redis = std::env::var("REDIS_URL").is_ok_and(|url| !url.is_empty());
        assert_eq!(health.body["redis"]["configured"], redis, "{}", health.text);
        assert_eq!(health.body["redis"]["ok"], true, "{}", health.text);
        assert_eq!(health.body["kubernetes"]["configured"], false);
        assert_eq!(health.body["outbox"]["pending"], 0);
        let counts = health.body["tenants"].as_array().unwrap();
        let count = |plan: &str, status: &str| {
            counts
                .iter()
                .find(|c| c["plan"] == plan && c["status"] == status)
                .map(|c| c["count"].as_i64().unwrap())
                .unwrap_or(0)
        };
        assert_eq!(count("free", "active"), 2, "{}", health.text);
        assert_eq!(count("professional", "suspended"), 1, "{}", health.text);
        // The platform log keeps what the admins did, naming no person.
        let pool = app.admin_pool().await;
        let actions = ids(
            &pool,
            &format!(
                "SELECT action FROM platform_audit WHERE tenant_id = '{}'",
                a.id
            ),
        )
        .await;
        assert_eq!(actions, ["tenant.resumed", "tenant.suspended"]);
        if app.backend == "postgres" {
            pool.close().await;
        }
        app.finish().await;
    }
}

/// The harness's app with a sandbox carrier attached, as `standalone` does.
fn with_sandbox(mut app: TestApp) -> (TestApp, SandboxCarrier) {
    let sandbox = SandboxCarrier::in_memory().with_signing_key(SANDBOX_TOKEN);
    app.state.sandbox = Some(sandbox.clone());
    app.router = app_router(&app.state);
    (app, sandbox)
}

fn app_router(state: &AppState) -> axum::Router {
    app(state.clone())
}

async fn runtime_events(app: &TestApp, tenant: &Tenant, call_id: &str, text: &str) {
    let reply = app
        .json(
            Method::POST,
            "/internal/v1/events",
            Some(INTERNAL_TOKEN),
            Some(json!({"events": [
                {"id": format!("{call_id}-1"), "tenant": tenant.slug, "callId": call_id, "occurredAt": "2026-11-21T10:00:01Z",
                 "type": "transcriptTurn", "index": 0, "role": "caller", "text": text, "offsetMs": 1000},
                {"id": format!("{call_id}-2"), "tenant": tenant.slug, "callId": call_id, "occurredAt": "2026-11-21T10:01:30Z",
                 "type": "callEnded", "reason": "callerHangup", "durationMs": 30_000, "turns": 1}
            ]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn tenant_deletion_releases_numbers_and_leaves_no_personal_data() {
    for app in apps("tenant_deletion", &lifecycle_args()).await {
        println!("tenant_deletion: backend {}", app.backend);
        let (app, sandbox) = with_sandbox(app);
        let gone = app.signup("owner@gone.test", "Vanishing Widgets").await;
        let kept = app.signup("owner@kept.test", "Staying Gadgets").await;
        let bought = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/numbers", gone.slug),
                Some(&gone.access),
                Some(json!({"areaCode": "555"})),
            )
            .await;
        assert_eq!(bought.status, StatusCode::CREATED, "{}", bought.text);
        let e164 = bought.body["e164"].as_str().unwrap().to_owned();
        let twiml = voice(&app, SANDBOX_TOKEN, "CAgone1", &e164).await;
        let call_id = call_id_of(&twiml);
        runtime_events(&app, &gone, &call_id, "my secret is tangerine").await;
        app.json(
            Method::POST,
            &format!("/api/v1/tenants/{}/api-keys", gone.slug),
            Some(&gone.access),
            Some(json!({"name": "ci"})),
        )
        .await;
        app.route_number("+15550888", &kept.id, "twilio", "platform")
            .await;

        // Only an owner with a person's token; then pending deletion, calls refused.
        let tenant_path = format!("/api/v1/tenants/{}", gone.slug);
        let deleted = app
            .json(Method::DELETE, &tenant_path, Some(&gone.access), None)
            .await;
        assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.text);
        assert_eq!(deleted.body["status"], "pendingDeletion");
        let again = app
            .json(Method::DELETE, &tenant_path, Some(&gone.access), None)
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        let refused = voice(&app, SANDBOX_TOKEN, "CAgone2", &e164).await;
        assert!(refused.contains(SUSPENDED_MESSAGE), "{refused}");
        // Restorable during the grace period: calls connect again.
        let restored = app
            .json(
                Method::POST,
                &format!("{tenant_path}/restore"),
                Some(&gone.access),
                None,
            )
            .await;
        assert_eq!(restored.status, StatusCode::OK, "{}", restored.text);
        assert_eq!(restored.body["suspended"], false);
        assert!(
            voice(&app, SANDBOX_TOKEN, "CAgone3", &e164)
                .await
                .contains("<Connect>")
        );
        // Deleted for good: the grace period (0 h here) is over at the worker's next pass.
        let deleted = app
            .json(Method::DELETE, &tenant_path, Some(&gone.access), None)
            .await;
        assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.text);
        assert_eq!(sandbox.owned_numbers().len(), 1);
        let report = lifecycle::run_pass(&app.state, now_ms() + 1).await;
        assert_eq!(report.purged, 1, "{report:?}");
        assert!(
            sandbox.owned_numbers().is_empty(),
            "the number was not released"
        );
        assert!(app.state.numbers.lookup(&e164).is_none());
        assert!(app.state.numbers.lookup("+15550888").is_some());

        // Table by table: nothing of the tenant, its caller or its conversation is left.
        let pool = app.admin_pool().await;
        let rows = every_row(&app, &pool).await;
        assert_absent(
            &rows,
            &[
                "Vanishing Widgets",
                &gone.slug,
                "+17775550123",
                "tangerine",
                &e164,
            ],
            None,
        );
        // The tenant's id stays only in the platform log (no name, no address).
        assert_absent(&rows, &[&gone.id], Some("platform_audit"));
        let purged = ids(
            &pool,
            &format!(
                "SELECT action FROM platform_audit WHERE tenant_id = '{}'",
                gone.id
            ),
        )
        .await;
        assert_eq!(purged, ["tenant.purged"]);
        // The other tenant is whole, and the owner's account remains (they delete it apart).
        assert!(
            rows.iter()
                .any(|(t, r)| t == "tenants" && r.contains("Staying Gadgets"))
        );
        assert!(
            rows.iter()
                .any(|(t, r)| t == "users" && r.contains("owner@gone.test"))
        );
        let gone_now = app
            .json(Method::GET, &tenant_path, Some(&gone.access), None)
            .await;
        assert_eq!(gone_now.status, StatusCode::NOT_FOUND);
        if app.backend == "postgres" {
            pool.close().await;
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn account_deletion_needs_no_sole_ownership_and_leaves_no_trace_of_the_person() {
    for app in apps("account_deletion", &lifecycle_args()).await {
        println!("account_deletion: backend {}", app.backend);
        let owner = app.signup("boss@team.test", "Team").await;
        let member = app.signup("leaver@team.test", "Leaver Co").await;
        let member_id = user_id(&app, "leaver@team.test").await;
        // The leaver is an admin of Team and acts there.
        let mut tx = app
            .state
            .store
            .write(&Scope::tenant(&owner.id))
            .await
            .unwrap();
        switchboard_gateway::store::tenants::add_member(
            &mut tx,
            &owner.id,
            &member_id,
            switchboard_gateway::store::tenants::Role::Admin,
            now_ms(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let key = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/api-keys", owner.slug),
                Some(&member.access),
                Some(json!({"name": "leaver's key"})),
            )
            .await;
        assert_eq!(key.status, StatusCode::CREATED, "{}", key.text);

        let me = "/api/v1/auth/me";
        let wrong = app
            .json(
                Method::DELETE,
                me,
                Some(&member.access),
                Some(json!({"password": "nope"})),
            )
            .await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.text);
        let password = json!({"password": "correct horse battery staple"});
        // Sole owner of the tenant their signup made: refused, naming it.
        let sole = app
            .json(
                Method::DELETE,
                me,
                Some(&member.access),
                Some(password.clone()),
            )
            .await;
        assert_eq!(sole.status, StatusCode::CONFLICT, "{}", sole.text);
        assert_eq!(sole.body["error"]["code"], "sole_owner");
        assert!(sole.text.contains(&member.slug), "{}", sole.text);
        // Deleting that tenant first lets the account go.
        let deleted = app
            .json(
                Method::DELETE,
                &format!("/api/v1/tenants/{}", member.slug),
                Some(&member.access),
                None,
            )
            .await;
        assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.text);
        let gone = app
            .json(Method::DELETE, me, Some(&member.access), Some(password))
            .await;
        assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
        let after = app.json(Method::GET, me, Some(&member.access), None).await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED);
        let login = app
            .json(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": "leaver@team.test", "password": "correct horse battery staple"})),
            )
            .await;
        assert_eq!(login.status, StatusCode::UNAUTHORIZED);
        // Purge the leaver's tenant too, then walk the schema: no address, no id.
        lifecycle::run_pass(&app.state, now_ms() + 1).await;
        let pool = app.admin_pool().await;
        let rows = every_row(&app, &pool).await;
        assert_absent(&rows, &["leaver@team.test", &member_id], None);
        // Team and its key remain; the key's author is anonymous now.
        let authors = ids(
            &pool,
            &format!(
                "SELECT created_by FROM api_keys WHERE tenant_id = '{}'",
                owner.id
            ),
        )
        .await;
        assert_eq!(authors, ["deleted-user"]);
        assert!(rows.iter().any(|(_, r)| r.contains("account.deleted")));
        if app.backend == "postgres" {
            pool.close().await;
        }
        app.finish().await;
    }
}

fn unpack(bytes: &[u8]) -> std::collections::BTreeMap<String, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        files.insert(name, text);
    }
    files
}

async fn download(app: &TestApp, path: &str, token: &str) -> (StatusCode, Vec<u8>) {
    use tower::ServiceExt;
    let request = axum::http::Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    assert!(status != StatusCode::OK || response.headers()["content-type"] == "application/gzip");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

#[tokio::test]
async fn exports_hold_every_kind_and_nothing_of_another_tenant() {
    for app in apps("export", &lifecycle_args()).await {
        println!("export: backend {}", app.backend);
        let a = app.signup("owner@export-a.test", "Export A").await;
        let b = app.signup("owner@export-b.test", "Export B").await;
        app.route_number("+15550601", &a.id, "twilio", "platform")
            .await;
        app.route_number("+15550602", &b.id, "twilio", "platform")
            .await;
        for (tenant, sid, to, text) in [
            (&a, "CAexpA", "+15550601", "alpha conversation"),
            (&b, "CAexpB", "+15550602", "bravo conversation"),
        ] {
            let twiml = voice(&app, TWILIO_TOKEN, sid, to).await;
            runtime_events(&app, tenant, &call_id_of(&twiml), text).await;
        }
        // A member (viewer) may not export; the owner may.
        let (status, bytes) = download(
            &app,
            &format!("/api/v1/tenants/{}/export", a.slug),
            &a.access,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let files = unpack(&bytes);
        let mut expected: Vec<&str> = lifecycle::export::TENANT_FILES.to_vec();
        expected.push("manifest.json");
        expected.sort();
        assert_eq!(
            files.keys().map(String::as_str).collect::<Vec<_>>(),
            expected
        );
        let parse = |name: &str| -> Value { serde_json::from_str(&files[name]).unwrap() };
        assert_eq!(parse("tenant.json")["slug"], a.slug.as_str());
        assert_eq!(parse("members.json")[0]["email"], "owner@export-a.test");
        assert_eq!(parse("numbers.json")[0]["e164"], "+15550601");
        assert!(parse("agents.json")["default"].is_object());
        assert_eq!(parse("calls.json")[0]["to"], "+15550601");
        assert_eq!(parse("transcripts.json")[0]["text"], "alpha conversation");
        assert_eq!(parse("usage.json")[0]["calls"], 1);
        assert!(!parse("audit.json").as_array().unwrap().is_empty());
        assert_eq!(
            parse("manifest.json")["files"].as_array().unwrap().len(),
            lifecycle::export::TENANT_FILES.len()
        );
        for (name, text) in &files {
            for marker in [
                "bravo",
                "+15550602",
                &b.id,
                &b.slug,
                "owner@export-b.test",
                "password",
                "ciphertext",
            ] {
                assert!(!text.contains(marker), "{name} holds {marker:?}: {text}");
            }
        }
        let (status, _) = download(
            &app,
            &format!("/api/v1/tenants/{}/export", a.slug),
            &b.access,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // A person's own archive.
        let (status, bytes) = download(&app, "/api/v1/auth/me/export", &a.access).await;
        assert_eq!(status, StatusCode::OK);
        let mine = unpack(&bytes);
        let mut expected: Vec<&str> = lifecycle::export::USER_FILES.to_vec();
        expected.push("manifest.json");
        expected.sort();
        assert_eq!(
            mine.keys().map(String::as_str).collect::<Vec<_>>(),
            expected
        );
        let account: Value = serde_json::from_str(&mine["account.json"]).unwrap();
        assert_eq!(account["email"], "owner@export-a.test");
        let memberships: Value = serde_json::from_str(&mine["memberships.json"]).unwrap();
        assert_eq!(memberships.as_array().unwrap().len(), 1);
        for text in mine.values() {
            for marker in ["$argon2", "owner@export-b.test", &b.id] {
                assert!(!text.contains(marker), "{marker:?} in {text}");
            }
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn master_key_rotation_re_encrypts_every_stored_secret() {
    for app in apps("rekey", &lifecycle_args()).await {
        println!("rekey: backend {}", app.backend);
        let a = app.signup("keys@rotate.test", "Rotate").await;
        let created = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/credentials", a.slug),
                Some(&a.access),
                Some(json!({"provider": "openai", "label": "main", "secret": "sk-rotate-0123456789"})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let hook = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/webhooks", a.slug),
                Some(&a.access),
                Some(json!({"url": "https://hooks.example.com/in", "events": ["call.completed"]})),
            )
            .await;
        assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text);
        // A retried creation's stored answer is sealed too (Idempotency-Key).
        let keyed = app
            .raw(
                axum::http::Request::post(format!("/api/v1/tenants/{}/api-keys", a.slug))
                    .header("authorization", format!("Bearer {}", a.access))
                    .header("content-type", "application/json")
                    .header("idempotency-key", "rotate-key-1")
                    .body(axum::body::Body::from(json!({"name": "ci"}).to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(keyed.status, StatusCode::CREATED, "{}", keyed.text);
        // A rotated webhook secret: the replaced one still signs in its grace period.
        let rotated = app
            .json(
                Method::POST,
                &format!(
                    "/api/v1/tenants/{}/webhooks/{}/rotate-secret",
                    a.slug,
                    hook.body["id"].as_str().unwrap()
                ),
                Some(&a.access),
                Some(json!({"gracePeriodHours": 24})),
            )
            .await;
        assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);

        let old = "22".repeat(32);
        let new = "33".repeat(32);
        let state_with = |current: &str, previous: Vec<String>| {
            let mut config = crate::harness::config(&app.url, &lifecycle_args());
            config.master_encryption_key = Some(current.to_owned());
            config.master_encryption_previous_keys = previous;
            let store = app.state.store.clone();
            async move {
                AppState::assemble(
                    config,
                    store,
                    Arc::new(MemoryMailer::default()),
                    KubeSync::disabled(),
                )
                .await
                .unwrap()
            }
        };
        let secret_of = |state: AppState| {
            let tenant = a.id.clone();
            async move {
                switchboard_gateway::provider_keys::load_decrypted(&state, &tenant)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(_, plain)| String::from_utf8(plain).unwrap())
                    .collect::<Vec<_>>()
            }
        };
        // The new key alone cannot read what the old one sealed.
        assert!(secret_of(state_with(&new, vec![]).await).await.is_empty());
        // During the rotation the old key still decrypts; the pass re-seals everything.
        let rotating = state_with(&new, vec![old.clone()]).await;
        assert_eq!(secret_of(rotating.clone()).await, ["sk-rotate-0123456789"]);
        let done = lifecycle::rekey::rekey_all(&rotating.store, &rotating.keyring)
            .await
            .unwrap();
        assert_eq!(
            (
                done.provider_credentials,
                done.webhook_endpoints,
                done.idempotent_answers,
                done.unreadable
            ),
            (1, 2, 1, 0)
        );
        let pool = app.admin_pool().await;
        let current = rotating.keyring.current_key_id().to_owned();
        for table in [
            "provider_credentials",
            "webhook_endpoints",
            "idempotency_keys",
        ] {
            let key_ids = ids(&pool, &format!("SELECT key_id FROM {table}")).await;
            assert_eq!(key_ids, std::slice::from_ref(&current), "{table}");
        }
        let previous = ids(&pool, "SELECT previous_key_id FROM webhook_endpoints").await;
        assert_eq!(previous, std::slice::from_ref(&current));
        let again = lifecycle::rekey::rekey_all(&rotating.store, &rotating.keyring)
            .await
            .unwrap();
        assert_eq!(again, Default::default());
        // After the rotation the old key can go.
        assert_eq!(
            secret_of(state_with(&new, vec![]).await).await,
            ["sk-rotate-0123456789"]
        );
        if app.backend == "postgres" {
            pool.close().await;
        }
        app.finish().await;
    }
}
