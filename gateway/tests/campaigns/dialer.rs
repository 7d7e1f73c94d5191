//! The campaign dialer against the sandbox carrier with an injected clock: pacing (asserted
//! on the carrier's own call record), the calling window across a time-zone boundary,
//! retries with backoff, suspension, plan limits, a kill in the middle of a batch, two
//! dialers on one database, answered calls reaching the runtime's script, survey answers in
//! the results, and the contacts upload with the do-not-call list.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use switchboard_carriers::sandbox::CallRecord;
use switchboard_carriers::{Carrier, PurchaseRequest, SandboxCarrier, WebhookConfig};
use switchboard_gateway::dialer::clock::{Clock, ManualClock};
use switchboard_gateway::dialer::{DIALING_TIMEOUT_MS, Dialer, PassReport};

use crate::harness::{INTERNAL_TOKEN, SANDBOX_TOKEN, Tenant, TestApp, apps};

const FROM: &str = "+15550100";
/// Monday 2026-01-05 10:00 in New York (EST).
const MONDAY_10AM_NEW_YORK: &str = "2026-01-05T15:00:00Z";

fn at(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// Free plan with campaigns allowed and room for the calls the tests place.
fn plan(monthly_calls: u64) -> Vec<String> {
    vec![
        "--plan-limits".into(),
        json!({"free": {"campaigns": true, "monthlyCalls": monthly_calls, "monthlyMinutes": 100000}})
            .to_string(),
    ]
}

fn contacts_csv(n: usize) -> String {
    let mut csv = String::from("phone,name\n");
    for i in 0..n {
        csv.push_str(&format!("+1555200{i:04},Contact {i}\n"));
    }
    csv
}

/// A campaign spec with the given overrides merged over New York office hours, every day.
fn spec(overrides: Value) -> Value {
    let mut spec = json!({
        "fromNumber": "main-line",
        "contacts": {"uploaded": true},
        "schedule": {"timeZone": "America/New_York", "windowStart": "09:00", "windowEnd": "17:00", "days": []},
        "pacing": {"maxConcurrent": 5, "callsPerMinute": 600},
        "retry": {"maxAttempts": 1, "backoffSeconds": 60, "retryOn": []},
    });
    if let (Value::Object(base), Value::Object(patch)) = (&mut spec, overrides) {
        for (k, v) in patch {
            base.insert(k, v);
        }
    }
    spec
}

struct Rig {
    app: TestApp,
    tenant: Tenant,
    sandbox: SandboxCarrier,
    clock: ManualClock,
    dialer: Dialer,
    generation: i64,
}

/// A sandbox carrier owning [`FROM`], routed to `tenant`.
async fn sandbox_owning_from(app: &TestApp, tenant: &Tenant) -> SandboxCarrier {
    let sandbox = SandboxCarrier::in_memory().with_signing_key(SANDBOX_TOKEN);
    sandbox
        .buy(&PurchaseRequest {
            e164: FROM.into(),
            tag: "line".into(),
            webhooks: WebhookConfig {
                voice_url: "https://gateway.test/api/v1/webhooks/twilio/voice".into(),
                status_callback_url: None,
            },
        })
        .await
        .unwrap();
    app.route_number(FROM, &tenant.id, "sandbox", "platform")
        .await;
    sandbox
}

async fn rig(app: TestApp, email: &str, spec: Value, csv: &str) -> Rig {
    let tenant = app.signup(email, &format!("{email} co")).await;
    let sandbox = sandbox_owning_from(&app, &tenant).await;
    let clock = ManualClock::starting_at(at(MONDAY_10AM_NEW_YORK));
    let dialer = dialer_for(&app, &sandbox, &clock);
    let mut rig = Rig {
        app,
        tenant,
        sandbox,
        clock,
        dialer,
        generation: 0,
    };
    rig.register(spec, Some(csv)).await;
    rig
}

fn dialer_for(app: &TestApp, sandbox: &SandboxCarrier, clock: &ManualClock) -> Dialer {
    let mut state = app.state.clone();
    state.sandbox = Some(sandbox.clone());
    Dialer::new(state, Arc::new(clock.clone()))
}

impl Rig {
    fn path(&self) -> String {
        format!("/internal/v1/tenants/{}/campaigns/survey", self.tenant.slug)
    }

    /// Registers (a new generation of) the campaign as the operator does.
    async fn register(&mut self, spec: Value, csv: Option<&str>) -> Value {
        self.generation += 1;
        let reply = self
            .app
            .json(
                Method::PUT,
                &self.path(),
                Some(INTERNAL_TOKEN),
                Some(
                    json!({"namespace": "tenant-ns", "uid": "uid-1", "generation": self.generation,
                    "spec": spec, "fromNumber": FROM, "contactsCsv": csv}),
                ),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.body
    }

    async fn pass(&self) -> PassReport {
        self.dialer.pass().await.unwrap()
    }

    async fn progress(&self) -> Value {
        let reply = self
            .app
            .json(
                Method::GET,
                &format!("{}/progress", self.path()),
                Some(INTERNAL_TOKEN),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.body
    }

    /// Ends a call at the carrier, then reports it the way the carrier does (a signed status
    /// callback).
    async fn end_call(&self, call: &CallRecord, status: &str, seconds: u32) {
        self.sandbox.complete_call(&call.id);
        let duration = seconds.to_string();
        let reply = self
            .app
            .twilio_post(
                "/api/v1/webhooks/twilio/status",
                SANDBOX_TOKEN,
                &[
                    ("CallSid", &call.id),
                    ("CallStatus", status),
                    ("From", &call.from),
                    ("To", &call.to),
                    ("CallDuration", &duration),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    }

    fn active_calls(&self) -> Vec<CallRecord> {
        self.sandbox
            .calls()
            .into_iter()
            .filter(|c| c.ended_at.is_none())
            .collect()
    }

    /// Calls per destination, from the carrier's own record.
    fn calls_per_contact(&self) -> HashMap<String, usize> {
        let mut per = HashMap::new();
        for call in self.sandbox.calls() {
            *per.entry(call.to).or_insert(0) += 1;
        }
        per
    }

    fn assert_nobody_called_twice(&self) {
        for (to, n) in self.calls_per_contact() {
            assert_eq!(n, 1, "{to} was called {n} times");
        }
    }
}

/// Dials `contacts` calls lasting `call_seconds` with a pass every second of the injected
/// clock; returns the carrier's peak concurrency and the most starts in any 60 s window.
async fn run_paced(
    app: TestApp,
    max_concurrent: i32,
    per_minute: i32,
    call_seconds: i64,
    contacts: usize,
) -> (usize, usize) {
    let backend = app.backend;
    let rig = rig(
        app,
        "pace@example.com",
        spec(json!({"pacing": {"maxConcurrent": max_concurrent, "callsPerMinute": per_minute}})),
        &contacts_csv(contacts),
    )
    .await;
    let mut started: Vec<(i64, usize)> = Vec::new();
    let mut placed_at: HashMap<String, i64> = HashMap::new();
    for _ in 0..600 {
        let now = rig.clock.now_ms();
        let before = rig.sandbox.calls().len();
        rig.pass().await;
        started.push((now, rig.sandbox.calls().len() - before));
        for call in rig.sandbox.calls() {
            placed_at.entry(call.id.clone()).or_insert(now);
        }
        for call in rig.active_calls() {
            if now - placed_at[&call.id] >= call_seconds * 1000 {
                rig.end_call(&call, "completed", 1).await;
            }
        }
        if rig.progress().await["phase"] == "Completed" {
            break;
        }
        rig.clock.advance_ms(1000);
    }
    let progress = rig.progress().await;
    assert_eq!(progress["phase"], "Completed", "{backend}: {progress}");
    assert_eq!(progress["completed"], contacts);
    rig.assert_nobody_called_twice();
    let mut busiest = 0;
    for (i, (t0, _)) in started.iter().enumerate() {
        let in_window: usize = started[i..]
            .iter()
            .take_while(|(t, _)| *t < t0 + 60_000)
            .map(|(_, n)| n)
            .sum();
        busiest = busiest.max(in_window);
    }
    let peak = rig.sandbox.max_concurrent_calls();
    rig.app.finish().await;
    (peak, busiest)
}

#[tokio::test]
async fn pacing_is_never_exceeded_on_the_carriers_own_record() {
    for app in apps("dialer_pacing_concurrency", &plan(1000)).await {
        // Long calls: the concurrency cap binds.
        let backend = app.backend;
        let (peak, busiest) = run_paced(app, 3, 60, 25, 12).await;
        assert_eq!(
            peak, 3,
            "{backend}: concurrency must reach but never pass 3"
        );
        assert!(busiest <= 60, "{backend}: {busiest} starts in a minute");
    }
    for app in apps("dialer_pacing_rate", &plan(1000)).await {
        // Short calls: calls per minute binds.
        let backend = app.backend;
        let (peak, busiest) = run_paced(app, 10, 12, 2, 30).await;
        assert_eq!(
            busiest, 12,
            "{backend}: 12 per minute reached, never passed"
        );
        assert!(peak <= 10, "{backend}: {peak} concurrent");
    }
}

#[tokio::test]
async fn the_calling_window_follows_the_campaign_time_zone() {
    for app in apps("dialer_window", &plan(1000)).await {
        let rig = rig(
            app,
            "window@example.com",
            spec(
                json!({"schedule": {"timeZone": "America/New_York", "windowStart": "09:00",
                "windowEnd": "17:00", "days": ["Mon"]}}),
            ),
            &contacts_csv(3),
        )
        .await;
        // 13:59 UTC is 08:59 in New York: closed (it would be open in UTC).
        rig.clock.set_ms(at("2026-01-05T13:59:00Z"));
        rig.pass().await;
        assert!(rig.sandbox.calls().is_empty());
        let progress = rig.progress().await;
        assert_eq!(progress["reason"], "OutsideWindow", "{progress}");
        assert_eq!(progress["phase"], "Running");
        // 14:00 UTC = 09:00 New York: open.
        rig.clock.set_ms(at("2026-01-05T14:00:00Z"));
        rig.pass().await;
        assert_eq!(rig.sandbox.calls().len(), 3);
        assert!(rig.progress().await.get("reason").is_none());
        for call in rig.active_calls() {
            rig.end_call(&call, "no-answer", 0).await;
        }
        // A retry due at 22:00 UTC (17:00 New York) must wait for the next Monday.
        let mut rig = rig;
        rig.register(
            spec(
                json!({"schedule": {"timeZone": "America/New_York", "windowStart": "09:00",
                "windowEnd": "17:00", "days": ["Mon"]},
                "retry": {"maxAttempts": 2, "backoffSeconds": 60, "retryOn": ["no-answer"]}}),
            ),
            None,
        )
        .await;
        rig.clock.set_ms(at("2026-01-05T21:59:00Z"));
        rig.pass().await; // settles the no-answers: retry due at 22:00
        rig.clock.set_ms(at("2026-01-05T22:00:30Z"));
        rig.pass().await;
        assert_eq!(rig.sandbox.calls().len(), 3, "closed at 17:00 New York");
        // Tuesday 10:00 New York: not a calling day.
        rig.clock.set_ms(at("2026-01-06T15:00:00Z"));
        rig.pass().await;
        assert_eq!(rig.sandbox.calls().len(), 3, "Tuesday is not a calling day");
        rig.clock.set_ms(at("2026-01-12T15:00:00Z"));
        rig.pass().await;
        assert_eq!(
            rig.sandbox.calls().len(),
            6,
            "next Monday retries all three"
        );
        rig.app.finish().await;
    }
}

#[tokio::test]
async fn unanswered_calls_are_retried_with_doubling_backoff() {
    for app in apps("dialer_retries", &plan(1000)).await {
        let rig = rig(
            app,
            "retry@example.com",
            spec(json!({"retry": {"maxAttempts": 3, "backoffSeconds": 60,
                "retryOn": ["no-answer", "busy"]}})),
            "phone\n+15552000001\n+15552000002\n",
        )
        .await;
        let outcome_for = |to: &str, attempt: usize| match (to, attempt) {
            ("+15552000001", 1) => "no-answer",
            ("+15552000001", 2) => "busy",
            ("+15552000001", _) => "no-answer",
            _ => "failed",
        };
        let mut attempts: HashMap<String, usize> = HashMap::new();
        let mut dialled_at: Vec<(String, i64)> = Vec::new();
        let start = rig.clock.now_ms();
        for _ in 0..400 {
            let before = rig.sandbox.calls().len();
            rig.pass().await;
            for call in rig.sandbox.calls().into_iter().skip(before) {
                dialled_at.push((call.to.clone(), rig.clock.now_ms() - start));
                let n = attempts.entry(call.to.clone()).or_insert(0);
                *n += 1;
                rig.end_call(&call, outcome_for(&call.to, *n), 0).await;
            }
            rig.clock.advance_ms(1000);
        }
        assert_eq!(attempts["+15552000001"], 3, "{dialled_at:?}");
        assert_eq!(attempts["+15552000002"], 1, "failed is not in retryOn");
        let first: Vec<i64> = dialled_at
            .iter()
            .filter(|(to, _)| to == "+15552000001")
            .map(|(_, t)| *t)
            .collect();
        // Backoff 60 s, then 120 s (settled on the pass after the call ended).
        assert!(
            (61_000..=62_000).contains(&(first[1] - first[0])),
            "{first:?}"
        );
        assert!(
            (121_000..=122_000).contains(&(first[2] - first[1])),
            "{first:?}"
        );
        let progress = rig.progress().await;
        assert_eq!(progress["phase"], "Completed", "{progress}");
        assert_eq!(progress["noAnswer"], 1);
        assert_eq!(progress["failed"], 1);
        rig.app.finish().await;
    }
}

#[tokio::test]
async fn suspension_pauses_dialling_and_resuming_continues() {
    for app in apps("dialer_suspend", &plan(1000)).await {
        let mut rig = rig(
            app,
            "suspend@example.com",
            spec(json!({"suspend": true})),
            &contacts_csv(2),
        )
        .await;
        rig.pass().await;
        assert!(rig.sandbox.calls().is_empty());
        let progress = rig.progress().await;
        assert_eq!(progress["phase"], "Paused");
        assert_eq!(progress["reason"], "Suspended");

        rig.register(spec(json!({"suspend": false})), None).await;
        let scope = switchboard_gateway::store::Scope::tenant(&rig.tenant.id);
        let set_suspended = |on: bool| {
            let store = rig.app.state.store.clone();
            let scope = scope.clone();
            let id = rig.tenant.id.clone();
            async move {
                let mut tx = store.write(&scope).await.unwrap();
                sqlx::query("UPDATE tenants SET suspended = $1 WHERE id = $2")
                    .bind(on)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        };
        set_suspended(true).await;
        rig.pass().await;
        assert!(rig.sandbox.calls().is_empty());
        assert_eq!(rig.progress().await["reason"], "TenantSuspended");

        set_suspended(false).await;
        rig.pass().await;
        assert_eq!(rig.sandbox.calls().len(), 2);
        assert_eq!(rig.progress().await["phase"], "Running");
        rig.app.finish().await;
    }
}

#[tokio::test]
async fn dialling_stops_at_the_plan_limit() {
    for app in apps("dialer_limits", &plan(3)).await {
        let rig = rig(app, "limit@example.com", spec(json!({})), &contacts_csv(6)).await;
        for _ in 0..5 {
            rig.pass().await;
            for call in rig.active_calls() {
                rig.end_call(&call, "completed", 30).await;
            }
            rig.clock.advance_ms(1000);
        }
        assert_eq!(rig.sandbox.calls().len(), 3, "monthlyCalls is 3");
        let progress = rig.progress().await;
        assert_eq!(progress["phase"], "Paused", "{progress}");
        assert_eq!(progress["reason"], "PlanLimitReached");
        assert_eq!(progress["completed"], 3);
        assert_eq!(progress["pending"], 3);
        rig.app.finish().await;
    }
}

#[tokio::test]
async fn a_dialer_killed_mid_batch_and_restarted_dials_nobody_twice() {
    for app in apps("dialer_restart", &plan(1000)).await {
        let backend = app.backend;
        let rig = rig(
            app,
            "crash@example.com",
            // Failures would be retried: an unknown attempt must still never be.
            spec(
                json!({"pacing": {"maxConcurrent": 10, "callsPerMinute": 600},
                "retry": {"maxAttempts": 3, "backoffSeconds": 60,
                    "retryOn": ["no-answer", "busy", "failed"]}}),
            ),
            &contacts_csv(16),
        )
        .await;
        // The carrier answers four requests; for the next six it places the call but its
        // answer never comes back, and the dialer is killed while it waits.
        rig.sandbox.hang_calls_after(4);
        let first = rig.dialer.clone();
        let pass = tokio::spawn(async move { first.pass().await });
        for _ in 0..300 {
            if rig.sandbox.calls().len() == 10 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        pass.abort();
        assert!(pass.await.unwrap_err().is_cancelled());
        assert_eq!(rig.sandbox.calls().len(), 10, "{backend}: one batch of ten");
        rig.sandbox.stop_hanging();
        // The six phones ring and are hung up; their status callbacks name carrier ids the
        // gateway never learnt.
        for call in rig.active_calls() {
            rig.end_call(&call, "completed", 10).await;
        }

        // A new gateway process on the same database, with a fresh dialer.
        let restarted = rig.app.sibling(&plan(1000)).await;
        let dialer = dialer_for(&restarted, &rig.sandbox, &rig.clock);
        let run = |minutes: usize, step_ms: i64| {
            let (dialer, rig) = (dialer.clone(), &rig);
            async move {
                for _ in 0..minutes {
                    dialer.pass().await.unwrap();
                    for call in rig.active_calls() {
                        rig.end_call(&call, "completed", 10).await;
                    }
                    rig.clock.advance_ms(step_ms);
                }
            }
        };
        run(30, 1000).await;
        assert_eq!(
            rig.sandbox.calls().len(),
            16,
            "{backend}: the six untouched contacts"
        );
        // The attempts the killed dialer left `dialing` time out as unknown and, although
        // failures are retried, are never dialled again.
        rig.clock.advance_ms(DIALING_TIMEOUT_MS);
        run(10, 60_000).await;
        rig.assert_nobody_called_twice();
        assert_eq!(rig.sandbox.calls().len(), 16);
        let progress = rig.progress().await;
        assert_eq!(progress["phase"], "Completed", "{backend}: {progress}");
        assert_eq!(progress["completed"], 10, "{backend}: {progress}");
        assert_eq!(progress["failed"], 6, "{backend}: {progress}");
        // Same database as `rig.app`, which drops it.
        restarted.state.store.pool().close().await;
        rig.app.finish().await;
    }
}

#[tokio::test]
async fn two_dialers_on_one_database_never_dial_a_contact_twice() {
    for app in apps("dialer_two_instances", &plan(1000)).await {
        let backend = app.backend;
        let rig = rig(
            app,
            "twins@example.com",
            spec(json!({"pacing": {"maxConcurrent": 8, "callsPerMinute": 1000}})),
            &contacts_csv(60),
        )
        .await;
        let replica = rig.app.sibling(&plan(1000)).await;
        let second = dialer_for(&replica, &rig.sandbox, &rig.clock);
        let mut reports = (PassReport::default(), PassReport::default());
        for _ in 0..100 {
            let (a, b) = tokio::join!(rig.dialer.pass(), second.pass());
            let (a, b) = (a.unwrap(), b.unwrap());
            reports.0.claimed += a.claimed;
            reports.1.claimed += b.claimed;
            assert!(
                rig.sandbox.active_calls() <= 8,
                "{backend}: maxConcurrent passed"
            );
            for call in rig.active_calls() {
                rig.end_call(&call, "completed", 5).await;
            }
            rig.clock.advance_ms(1000);
            if rig.progress().await["phase"] == "Completed" {
                break;
            }
        }
        rig.assert_nobody_called_twice();
        assert_eq!(rig.sandbox.calls().len(), 60);
        assert!(rig.sandbox.max_concurrent_calls() <= 8);
        println!(
            "{backend}: dialer A claimed {}, dialer B claimed {}",
            reports.0.claimed, reports.1.claimed
        );
        assert_eq!(reports.0.claimed + reports.1.claimed, 60);
        replica.state.store.pool().close().await;
        rig.app.finish().await;
    }
}

#[tokio::test]
async fn answered_calls_reach_the_runtime_script_and_answers_land_in_results() {
    for app in apps("dialer_answers", &plan(1000)).await {
        let survey = spec(
            json!({"agent": {"greeting": "Hi, a quick survey.", "questions": [
            {"field": "rating", "text": "From 1 to 5?", "answerType": "number"}]}}),
        );
        let rig = rig(
            app,
            "answers@example.com",
            survey,
            "id,phone,name\nann,+15552000001,Ann\n",
        )
        .await;
        rig.pass().await;
        let call = rig.sandbox.calls().pop().unwrap();
        // The carrier fetches the answer URL once the contact picks up.
        let answer_path = call
            .answer_url
            .strip_prefix(crate::harness::PUBLIC)
            .unwrap()
            .to_owned();
        assert!(answer_path.contains("?attempt="), "{answer_path}");
        let twiml = rig
            .app
            .twilio_post(
                &answer_path,
                SANDBOX_TOKEN,
                &[
                    ("CallSid", &call.id),
                    ("From", &call.from),
                    ("To", &call.to),
                    ("Direction", "outbound-api"),
                ],
            )
            .await;
        assert_eq!(twiml.status, StatusCode::OK, "{}", twiml.text);
        assert!(twiml.text.contains("<Connect><Stream"), "{}", twiml.text);
        assert!(twiml.text.contains("name=\"campaign\" value=\"survey\""));
        assert!(twiml.text.contains("name=\"contact\" value=\"ann\""));
        let call_id = twiml
            .text
            .split("name=\"callId\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        // A forged answer URL (attempt id altered) fails the signature check.
        let forged = rig
            .app
            .raw(
                Request::post(format!("{answer_path}x"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-twilio-signature", "AAAA")
                    .body(Body::from(format!("CallSid={}&From=%2B15550100", call.id)))
                    .unwrap(),
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        // The runtime reports the conversation.
        let event = |id: &str, kind: Value| {
            let mut e = json!({"id": id, "tenant": rig.tenant.slug, "callId": call_id,
                "occurredAt": "2026-01-05T15:00:05Z"});
            for (k, v) in kind.as_object().unwrap() {
                e[k] = v.clone();
            }
            e
        };
        let events = json!({"events": [
            event("e1", json!({"type": "callStarted", "carrier": "sandbox", "streamId": "MZ1",
                "carrierCallId": call.id, "campaign": "survey", "contact": "ann"})),
            event("e2", json!({"type": "surveyAnswer", "field": "rating", "raw": "I'd say four", "value": 4})),
            event("e3", json!({"type": "callEnded", "reason": "agentHangup", "durationMs": 42000, "turns": 4})),
        ]});
        let posted = rig
            .app
            .json(
                Method::POST,
                "/internal/v1/events",
                Some(INTERNAL_TOKEN),
                Some(events),
            )
            .await;
        assert_eq!(posted.status, StatusCode::OK, "{}", posted.text);
        rig.sandbox.complete_call(&call.id);
        rig.pass().await;

        let results = rig
            .app
            .json(
                Method::GET,
                &format!(
                    "/api/v1/tenants/{}/campaigns/survey/results",
                    rig.tenant.slug
                ),
                Some(&rig.tenant.access),
                None,
            )
            .await;
        assert_eq!(results.status, StatusCode::OK, "{}", results.text);
        let ann = &results.body["items"][0];
        assert_eq!(ann["state"], "completed", "{}", results.text);
        assert_eq!(ann["attempts"], 1);
        assert_eq!(ann["answers"]["rating"]["raw"], "I'd say four");
        assert_eq!(ann["answers"]["rating"]["value"], 4);
        assert_eq!(ann["lastCallId"], call_id.as_str());

        let csv = rig
            .app
            .json(
                Method::GET,
                &format!(
                    "/api/v1/tenants/{}/campaigns/survey/results.csv",
                    rig.tenant.slug
                ),
                Some(&rig.tenant.access),
                None,
            )
            .await;
        assert_eq!(csv.status, StatusCode::OK);
        let mut lines = csv.text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "id,phone,name,state,attempts,last_outcome,last_call_id,rating,rating_raw"
        );
        let row = lines.next().unwrap();
        assert!(
            row.starts_with("ann,+15552000001,Ann,completed,1,agentHangup,"),
            "{row}"
        );
        assert!(row.ends_with(",4,I'd say four"), "{row}");
        let progress = rig.progress().await;
        assert_eq!(progress["phase"], "Completed");
        rig.app.finish().await;
    }
}

async fn upload(
    app: &TestApp,
    tenant: &Tenant,
    token: &str,
    campaign: &str,
    csv: String,
) -> crate::harness::Reply {
    app.raw(
        Request::post(format!(
            "/api/v1/tenants/{}/campaigns/{campaign}/contacts",
            tenant.slug
        ))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "text/csv")
        .body(Body::from(csv))
        .unwrap(),
    )
    .await
}

/// `POST /api/v1/tenants/{tenant}/do-not-call` as the tenant's owner.
async fn add_do_not_call(app: &TestApp, tenant: &Tenant, body: Value) -> crate::harness::Reply {
    app.json(
        Method::POST,
        &format!("/api/v1/tenants/{}/do-not-call", tenant.slug),
        Some(&tenant.access),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn contacts_upload_reports_rows_and_the_do_not_call_list_is_honoured() {
    for app in apps("dialer_upload", &plan(1000)).await {
        let rig = rig(
            app,
            "upload@example.com",
            spec(json!({})),
            "phone\n+15552000001\n",
        )
        .await;
        let (app, tenant) = (&rig.app, &rig.tenant);
        let dnc = add_do_not_call(
            app,
            tenant,
            json!({"phone": "+15552000003", "reason": "asked not to be called"}),
        )
        .await;
        assert_eq!(dnc.status, StatusCode::CREATED, "{}", dnc.text);
        let bad = add_do_not_call(app, tenant, json!({"phone": "555-0100"})).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
        assert!(bad.text.contains("phone"));

        let csv = "phone,name,order\n+15552000002,Bo,7\nnot-a-number,X,1\n+15552000002,Bo again,8\n\
                   +15552000003,Listed,9\n+15552000001,Known,3\n+15552000004,Di,2\n";
        let reply = upload(app, tenant, &tenant.access, "survey", csv.into()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.body["accepted"], 2, "{}", reply.text);
        assert_eq!(reply.body["total"], 3);
        let rejected: Vec<(i64, String)> = reply.body["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["row"].as_i64().unwrap(),
                    r["error"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![2, 3, 4, 5]
        );
        assert!(rejected[0].1.contains("E.164"));
        assert!(rejected[1].1.contains("duplicate of row 1"));
        assert!(rejected[2].1.contains("do-not-call"));
        assert!(rejected[3].1.contains("already in the campaign"));

        // Wrong body, wrong campaign, too large.
        let no_phone = upload(app, tenant, &tenant.access, "survey", "name\nAnn\n".into()).await;
        assert_eq!(
            no_phone.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            no_phone.text
        );
        assert!(no_phone.text.contains("phone"));
        let unknown = upload(
            app,
            tenant,
            &tenant.access,
            "nope",
            "phone\n+15552000009\n".into(),
        )
        .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        let huge = format!("phone\n{}", "+15552000009\n".repeat(700_000));
        let too_big = upload(app, tenant, &tenant.access, "survey", huge).await;
        assert_eq!(
            too_big.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            too_big.text
        );
        // Another tenant cannot upload into this campaign.
        let other = app.signup("other-upload@example.com", "Other Upload").await;
        let foreign = app
            .raw(
                Request::post(format!(
                    "/api/v1/tenants/{}/campaigns/survey/contacts",
                    tenant.slug
                ))
                .header("authorization", format!("Bearer {}", other.access))
                .body(Body::from("phone\n+15552000010\n"))
                .unwrap(),
            )
            .await;
        assert!(
            foreign.status == StatusCode::FORBIDDEN || foreign.status == StatusCode::NOT_FOUND,
            "{}",
            foreign.status
        );

        // A number listed after upload is skipped by the dialer.
        let later = add_do_not_call(app, tenant, json!({"phone": "+15552000004"})).await;
        assert_eq!(later.status, StatusCode::CREATED);
        rig.pass().await;
        let called: Vec<String> = rig.sandbox.calls().into_iter().map(|c| c.to).collect();
        assert!(!called.contains(&"+15552000004".to_owned()), "{called:?}");
        assert!(!called.contains(&"+15552000003".to_owned()), "{called:?}");
        assert_eq!(called.len(), 2, "{called:?}");
        let results = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/campaigns/survey/results", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        let skipped = results.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["phone"] == "+15552000004")
            .unwrap()
            .clone();
        assert_eq!(skipped["state"], "failed");
        assert_eq!(skipped["lastOutcome"], "do-not-call");
        let listed = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/do-not-call", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
        rig.app.finish().await;
    }
}

#[tokio::test]
async fn campaign_routes_are_isolated_between_tenants() {
    for app in apps("dialer_isolation", &plan(1000)).await {
        let rig = rig(
            app,
            "iso-a@example.com",
            spec(json!({})),
            "id,phone,name\nsecret-contact,+15552000001,Alice Secret\n",
        )
        .await;
        let (app, a) = (&rig.app, &rig.tenant);
        let dnc = add_do_not_call(app, a, json!({"phone": "+15552000099"})).await;
        assert_eq!(dnc.status, StatusCode::CREATED);
        let b = app.signup("iso-b@example.com", "Iso B").await;
        let key = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/api-keys", b.slug),
                Some(&b.access),
                Some(json!({"name": "b", "scopes": ["admin"]})),
            )
            .await;
        let b_key = key.body["key"].as_str().unwrap().to_owned();
        for token in [b.access.as_str(), b_key.as_str()] {
            for tenant in [&a.slug, &a.id, &b.slug] {
                let base = format!("/api/v1/tenants/{tenant}");
                for (method, path, body) in [
                    (Method::GET, format!("{base}/campaigns/survey"), None),
                    (
                        Method::GET,
                        format!("{base}/campaigns/survey/results"),
                        None,
                    ),
                    (
                        Method::GET,
                        format!("{base}/campaigns/survey/results.csv"),
                        None,
                    ),
                    (
                        Method::DELETE,
                        format!("{base}/do-not-call/+15552000099"),
                        None,
                    ),
                ] {
                    let reply = app.json(method.clone(), &path, Some(token), body).await;
                    assert!(
                        matches!(reply.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
                        "{method} {path}: {} {}",
                        reply.status,
                        reply.text
                    );
                    assert!(!reply.text.contains("Alice Secret"));
                    assert!(!reply.text.contains("secret-contact"));
                }
                let upload = app
                    .raw(
                        Request::post(format!("{base}/campaigns/survey/contacts"))
                            .header("authorization", format!("Bearer {token}"))
                            .header("content-type", "text/csv")
                            .body(Body::from("phone\n+15552000010\n"))
                            .unwrap(),
                    )
                    .await;
                assert!(
                    matches!(upload.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
                    "{}",
                    upload.text
                );
            }
            // B's own list holds nothing of A's.
            let list = app
                .json(
                    Method::GET,
                    &format!("/api/v1/tenants/{}/do-not-call", b.slug),
                    Some(token),
                    None,
                )
                .await;
            assert_eq!(list.status, StatusCode::OK);
            assert_eq!(list.body["items"], json!([]));
        }
        assert_eq!(
            rig.app
                .count("SELECT COUNT(*) FROM campaign_contacts")
                .await,
            1,
            "nothing was uploaded anywhere"
        );
        rig.app.finish().await;
    }
}

#[tokio::test]
async fn standalone_campaigns_are_created_checked_and_stopped_through_the_api() {
    for app in apps("dialer_public_api", &plan(1000)).await {
        let tenant = app.signup("launch@example.com", "Launch Co").await;
        let sandbox = sandbox_owning_from(&app, &tenant).await;
        // Standalone mode: the gateway holds the sandbox carrier.
        let mut state = app.state.clone();
        state.sandbox = Some(sandbox.clone());
        let router = switchboard_gateway::app(state.clone());
        let call = |method: Method, path: String, body: Option<Value>| {
            let router = router.clone();
            let token = tenant.access.clone();
            async move {
                let mut request = Request::builder()
                    .method(method)
                    .uri(path)
                    .header("authorization", format!("Bearer {token}"));
                let body = match body {
                    Some(b) => {
                        request = request.header("content-type", "application/json");
                        Body::from(b.to_string())
                    }
                    None => Body::empty(),
                };
                let response = tower::ServiceExt::oneshot(router, request.body(body).unwrap())
                    .await
                    .unwrap();
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (
                    status,
                    serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
                )
            }
        };
        let path = format!("/api/v1/tenants/{}/campaigns/launch", tenant.slug);
        let mut good = spec(json!({"fromNumber": FROM}));
        for (patch, field) in [
            (
                json!({"pacing": {"maxConcurrent": 0, "callsPerMinute": 10}}),
                "pacing.maxConcurrent",
            ),
            (
                json!({"schedule": {"timeZone": "Mars/Base", "windowStart": "09:00", "windowEnd": "17:00"}}),
                "schedule.timeZone",
            ),
            (json!({"fromNumber": "+15559999999"}), "fromNumber"),
            (
                json!({"contacts": {"configMapRef": {"name": "c"}}}),
                "contacts",
            ),
            // An agent the tenant does not have (it would silently be the default agent).
            (json!({"agent": {"name": "nobody"}}), "agent.name"),
        ] {
            let mut bad = good.clone();
            for (k, v) in patch.as_object().unwrap() {
                bad[k] = v.clone();
            }
            let (status, body) = call(Method::PUT, path.clone(), Some(bad)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(body["error"]["field"], field, "{body}");
        }
        let (status, body) = call(
            Method::PUT,
            format!("/api/v1/tenants/{}/campaigns/Bad_Name", tenant.slug),
            Some(good.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

        let (status, body) = call(Method::PUT, path.clone(), Some(good.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["phase"], "Running");
        let uploaded = upload(&app, &tenant, &tenant.access, "launch", contacts_csv(2)).await;
        assert_eq!(uploaded.body["accepted"], 2, "{}", uploaded.text);
        let clock = ManualClock::starting_at(at(MONDAY_10AM_NEW_YORK));
        let dialer = Dialer::new(state.clone(), Arc::new(clock.clone()));
        dialer.pass().await.unwrap();
        assert_eq!(sandbox.calls().len(), 2);

        good["suspend"] = json!(true);
        let (status, _) = call(Method::PUT, path.clone(), Some(good.clone())).await;
        assert_eq!(status, StatusCode::OK);
        dialer.pass().await.unwrap();
        let (_, progress) = call(Method::GET, path.clone(), None).await;
        assert_eq!(progress["phase"], "Paused", "{progress}");
        assert_eq!(progress["reason"], "Suspended");

        let (status, _) = call(Method::DELETE, path.clone(), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = call(Method::GET, path.clone(), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(Method::DELETE, path.clone(), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        app.finish().await;
    }
}

#[tokio::test]
async fn a_plan_without_campaigns_cannot_create_one() {
    for app in apps("dialer_public_api_plan", &[]).await {
        let tenant = app.signup("free@example.com", "Free Co").await;
        let reply = app
            .json(
                Method::PUT,
                &format!("/api/v1/tenants/{}/campaigns/launch", tenant.slug),
                Some(&tenant.access),
                Some(spec(json!({"fromNumber": FROM}))),
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
        assert!(reply.text.contains("campaigns"));
        app.finish().await;
    }
}
