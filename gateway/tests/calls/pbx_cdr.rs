//! Issue 18 item 5: a Grandstream CloudUCM / Asterisk PBX posts its own CDR JSON (shaped as in
//! Grandstream's CDR API guide: `{"cdr": [...]}`, string numbers, zone-less times); the records
//! are stored, listed with mapped fields, idempotent on `uniqueid`, and refused whole when one
//! is bad.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use serde_json::{Value, json};

use crate::harness::apps;

fn post(slug: &str, user: &str, password: &str, body: &Value) -> Request<Body> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Request::post(format!("/api/v1/webhooks/cdr/{slug}"))
        .header("content-type", "application/json")
        .header("authorization", format!("Basic {auth}"))
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn ucm(uniqueid: &str, overrides: Value) -> Value {
    let mut record = json!({"AcctId": "62", "accountcode": "", "src": "5300",
        "dst": "15550102", "dcontext": "from-internal", "clid": "\"pn01\" <5300>",
        "channel": "PJSIP/5300-00000000", "dstchannel": "PJSIP/trunk_1-00000001",
        "lastapp": "Dial", "lastdata": "PJSIP/trunk_1/15550102,60,",
        "start": "2026-11-20 11:46:40", "answer": "2026-11-20 11:46:43",
        "end": "2026-11-20 11:46:49", "duration": "9", "billsec": "6",
        "disposition": "ANSWERED", "amaflags": "DOCUMENTATION", "uniqueid": uniqueid,
        "userfield": "OUT", "channel_ext": "5300", "dstchannel_ext": "", "service": "s"});
    for (key, value) in overrides.as_object().unwrap() {
        record[key] = value.clone();
    }
    record
}

#[tokio::test]
async fn clouducm_cdrs_are_stored_listed_and_idempotent() {
    for app in apps("pbx_cdr", &[]).await {
        println!("backend: {}", app.backend);
        let tenant = app.signup("pbx@example.com", "Pbx Inc").await;
        let cred = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/cdr-credentials", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(cred.status, StatusCode::CREATED, "{}", cred.text);
        let user = cred.body["username"].as_str().unwrap().to_owned();
        let password = cred.body["password"].as_str().unwrap().to_owned();
        let send = |body: Value| app.raw(post(&tenant.slug, &user, &password, &body));

        // One bad record refuses the whole batch, naming the PBX's field.
        let bad = json!({"cdr": [ucm("1764000000.1", json!({})),
            ucm("1764000000.2", json!({"billsec": "six"}))]});
        let refused = send(bad).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!(
            refused.body["error"]["field"], "billsec",
            "{}",
            refused.text
        );
        let refused = send(json!([ucm(
            "1764000000.3",
            json!({"end": "2026-11-20 11:46:00"})
        )]))
        .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!(refused.body["error"]["field"], "end", "{}", refused.text);
        // The bounds are the project's: a call from before 2000 is refused, named `start`.
        let ancient = send(ucm("1764000000.5", json!({"start": "1999-12-31 23:59:59"}))).await;
        assert_eq!(ancient.body["error"]["field"], "start", "{}", ancient.text);
        assert_eq!(
            app.count("SELECT COUNT(*) FROM calls WHERE source = 'cdr'")
                .await,
            0
        );

        // The guide's `{"cdr": [...]}` list: an outbound answered call and an inbound missed one.
        let batch = json!({"cdr": [
            ucm("1764000000.1", json!({})),
            ucm("1764000000.2", json!({"src": "+15550199", "dst": "5301",
                "dcontext": "ext-did-00001", "channel": "PJSIP/trunk_1-00000002",
                "dstchannel": "PJSIP/5301-00000003", "userfield": "IN",
                "start": "2026-11-20 12:00:00", "answer": "", "end": "2026-11-20 12:00:20",
                "duration": "20", "billsec": "0", "disposition": "NO ANSWER"})),
        ]});
        let stored = send(batch.clone()).await;
        assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
        assert_eq!(stored.body["stored"], 2, "{}", stored.text);
        // A PBX re-sending (after a timeout) stores nothing twice; a single object and a
        // top-level array are accepted too.
        assert_eq!(send(batch).await.body["duplicates"], 2);
        let one = send(ucm("1764000000.1", json!({}))).await;
        assert_eq!(one.body["duplicates"], 1, "{}", one.text);
        let array = send(json!([ucm(
            "1764000000.4",
            json!({"disposition": "BUSY",
            "answer": "", "billsec": "0", "start": "2026-11-20 13:00:00",
            "end": "2026-11-20 13:00:03"})
        )]))
        .await;
        assert_eq!(array.body["stored"], 1, "{}", array.text);

        let list = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/calls?limit=10", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        let calls = list.body["items"].as_array().unwrap();
        assert_eq!(calls.len(), 3, "{}", list.text);
        let by_id = |id: &str| {
            calls
                .iter()
                .find(|c| c["carrierCallId"] == id)
                .unwrap_or_else(|| panic!("{id} not listed: {}", list.text))
                .clone()
        };
        let outbound = by_id("1764000000.1");
        assert_eq!(outbound["direction"], "outbound");
        assert_eq!(outbound["from"], "5300");
        assert_eq!(outbound["to"], "15550102");
        assert_eq!(outbound["status"], "completed");
        assert_eq!(outbound["outcome"], "answered");
        assert_eq!(outbound["durationSeconds"], 6);
        assert_eq!(outbound["carrier"], "pbx");
        assert!(
            outbound["startedAt"]
                .as_str()
                .unwrap()
                .starts_with("2026-11-20T11:46:40"),
            "{outbound}"
        );
        let inbound = by_id("1764000000.2");
        assert_eq!(inbound["direction"], "inbound");
        assert_eq!(inbound["from"], "+15550199");
        assert_eq!(inbound["to"], "5301");
        assert_eq!(inbound["status"], "no-answer");
        assert_eq!(inbound["durationSeconds"], 0);
        assert_eq!(inbound["answeredAt"], Value::Null);
        assert_eq!(by_id("1764000000.4")["status"], "busy");
        app.finish().await;
    }
}
