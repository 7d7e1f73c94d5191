//! The sandbox carrier behaves like a carrier: inventory, tags, persistence, failures, calls.

use std::time::Duration;

use switchboard_carriers::sandbox::{SandboxFailure, SandboxOp};
use switchboard_carriers::signatures::verify_twilio_form;
use switchboard_carriers::{
    Carrier, CarrierError, NumberQuery, OutboundCall, PurchaseRequest, SandboxCarrier,
    WebhookConfig,
};

fn purchase(e164: &str, tag: &str) -> PurchaseRequest {
    PurchaseRequest {
        e164: e164.into(),
        tag: tag.into(),
        webhooks: WebhookConfig {
            voice_url: "http://localhost:8080/api/v1/webhooks/twilio/voice".into(),
            status_callback_url: None,
        },
    }
}

fn call(from: &str, to: &str) -> OutboundCall {
    OutboundCall {
        from: from.into(),
        to: to.into(),
        answer_url: "http://localhost/answer".into(),
        status_callback_url: None,
        client_state: None,
    }
}

#[tokio::test]
async fn numbers_come_from_the_fictional_range_and_are_never_sold_twice() {
    let sandbox = SandboxCarrier::in_memory();
    let found = sandbox.search(&NumberQuery::voice("US")).await.unwrap();
    assert_eq!(found[0].e164, "+15550100");
    let bought = sandbox.buy(&purchase(&found[0].e164, "k1")).await.unwrap();
    assert_eq!(
        sandbox.find_by_tag("k1").await.unwrap(),
        Some(bought.clone())
    );
    assert_eq!(
        sandbox.find_by_e164("+15550100").await.unwrap(),
        Some(bought.clone())
    );
    // The owned number leaves the inventory.
    let next = sandbox.search(&NumberQuery::voice("US")).await.unwrap();
    assert_eq!(next[0].e164, "+15550101");
    let again = sandbox.buy(&purchase("+15550100", "k2")).await.unwrap_err();
    assert!(matches!(again, CarrierError::NothingAvailable { .. }));
    let outside = sandbox
        .buy(&purchase("+14155550100", "k3"))
        .await
        .unwrap_err();
    assert!(matches!(outside, CarrierError::NothingAvailable { .. }));
    // Other countries and area codes have nothing.
    let mut elsewhere = NumberQuery::voice("GB");
    assert!(sandbox.search(&elsewhere).await.unwrap().is_empty());
    elsewhere = NumberQuery::voice("US");
    elsewhere.area_code = Some("212".into());
    assert!(sandbox.search(&elsewhere).await.unwrap().is_empty());
    assert_eq!(sandbox.purchase_count(), 1);

    sandbox.release(&bought.id).await.unwrap();
    sandbox.release(&bought.id).await.unwrap();
    assert_eq!(sandbox.get(&bought.id).await.unwrap(), None);
    assert_eq!(sandbox.release_count(), 1);
}

#[tokio::test]
async fn the_range_runs_out_after_one_hundred_numbers() {
    let sandbox = SandboxCarrier::in_memory();
    for i in 0..100 {
        let mut query = NumberQuery::voice("US");
        query.limit = 1;
        let n = sandbox.search(&query).await.unwrap().remove(0);
        sandbox
            .buy(&purchase(&n.e164, &format!("k{i}")))
            .await
            .unwrap();
    }
    assert!(
        sandbox
            .search(&NumberQuery::voice("US"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn inventory_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbox.json");
    let first = SandboxCarrier::open(&path).unwrap();
    let bought = first
        .buy(&purchase("+15550142", "persisted"))
        .await
        .unwrap();
    drop(first);
    let reopened = SandboxCarrier::open(&path).unwrap();
    assert_eq!(
        reopened.find_by_tag("persisted").await.unwrap(),
        Some(bought)
    );
    assert_eq!(reopened.purchase_count(), 1);
    // No temporary files are left behind by the atomic write.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    std::fs::write(&path, b"{not json").unwrap();
    assert!(SandboxCarrier::open(&path).is_err());
}

#[tokio::test]
async fn failures_can_be_switched_on_per_operation() {
    let sandbox = SandboxCarrier::in_memory();
    sandbox.fail(
        SandboxOp::Buy,
        SandboxFailure::RateLimited(Duration::from_secs(3)),
        Some(1),
    );
    let err = sandbox.buy(&purchase("+15550100", "k")).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    // Armed once: the retry goes through, and the failed attempt bought nothing.
    sandbox.buy(&purchase("+15550100", "k")).await.unwrap();
    assert_eq!(sandbox.purchase_count(), 1);

    sandbox.fail(SandboxOp::Lookup, SandboxFailure::BadCredentials, None);
    for _ in 0..3 {
        assert!(matches!(
            sandbox.find_by_tag("k").await.unwrap_err(),
            CarrierError::BadCredentials { .. }
        ));
    }
    sandbox.clear_failures();
    assert!(sandbox.find_by_tag("k").await.unwrap().is_some());
}

#[tokio::test]
async fn calls_are_recorded_with_concurrency() {
    let sandbox = SandboxCarrier::in_memory();
    sandbox.buy(&purchase("+15550100", "k")).await.unwrap();
    let refused = sandbox
        .place_call(&call("+15550150", "+15551234567"))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, CarrierError::Permanent { .. }),
        "caller id must be owned"
    );

    let a = sandbox
        .place_call(&call("+15550100", "+15550001"))
        .await
        .unwrap();
    let b = sandbox
        .place_call(&call("+15550100", "+15550002"))
        .await
        .unwrap();
    assert_eq!(sandbox.active_calls(), 2);
    sandbox.hang_up(&a.id).await.unwrap();
    assert!(sandbox.complete_call(&b.id));
    let _c = sandbox
        .place_call(&call("+15550100", "+15550003"))
        .await
        .unwrap();
    assert_eq!(sandbox.active_calls(), 1);
    assert_eq!(sandbox.max_concurrent_calls(), 2);
    let calls = sandbox.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[1].concurrent_at_start, 2);
    assert_eq!(calls[2].concurrent_at_start, 1);
    // Hanging up an ended call succeeds; an unknown call does not.
    sandbox.hang_up(&a.id).await.unwrap();
    assert!(sandbox.hang_up("SC999999").await.is_err());
}

#[tokio::test]
async fn calls_can_be_made_to_hang_after_some_succeed() {
    let sandbox = SandboxCarrier::in_memory();
    sandbox.buy(&purchase("+15550100", "k")).await.unwrap();
    sandbox.hang_calls_after(1);
    sandbox
        .place_call(&call("+15550100", "+15550001"))
        .await
        .unwrap();
    let hung = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        sandbox.place_call(&call("+15550100", "+15550002")),
    )
    .await;
    assert!(hung.is_err(), "the second call must hang");
    assert_eq!(
        sandbox.calls().len(),
        2,
        "a hung call is placed; only its answer is lost"
    );
    sandbox.stop_hanging();
    sandbox
        .place_call(&call("+15550100", "+15550003"))
        .await
        .unwrap();
    assert_eq!(sandbox.calls().len(), 3);
}

#[test]
fn simulated_webhooks_verify_like_twilio_ones() {
    let sandbox = SandboxCarrier::in_memory().with_signing_key("local-token");
    let params = vec![
        ("CallSid".to_owned(), "SC000001".to_owned()),
        ("To".to_owned(), "+15550100".to_owned()),
    ];
    let url = "http://localhost:8080/api/v1/webhooks/twilio/voice";
    let signature = sandbox.sign_webhook(url, &params);
    verify_twilio_form("local-token", url, &params, &signature).unwrap();
    assert!(verify_twilio_form("other", url, &params, &signature).is_err());
}

#[tokio::test]
async fn a_lost_inventory_can_be_restored_without_counting_purchases() {
    let sandbox = SandboxCarrier::in_memory();
    let known = switchboard_carriers::OwnedNumber {
        id: "SB000007".into(),
        e164: "+15550107".into(),
        tag: Some("sb-key".into()),
        voice_url: Some("http://gw/voice".into()),
        status_callback_url: None,
    };
    sandbox.restore(known.clone()).unwrap();
    sandbox.restore(known.clone()).unwrap();
    assert_eq!(sandbox.purchase_count(), 0);
    assert_eq!(
        sandbox.find_by_tag("sb-key").await.unwrap(),
        Some(known.clone())
    );
    // The restored number is not for sale, and new ids do not collide with it.
    let free = sandbox
        .search(&NumberQuery {
            limit: 100,
            ..NumberQuery::voice("US")
        })
        .await
        .unwrap();
    assert!(free.iter().all(|n| n.e164 != "+15550107"));
    let bought = sandbox.buy(&purchase("+15550100", "k")).await.unwrap();
    assert_eq!(bought.id, "SB000008");
    // The same E.164 under another id is a conflict.
    let clash = switchboard_carriers::OwnedNumber {
        id: "SB000099".into(),
        ..known
    };
    assert!(sandbox.restore(clash).is_err());
}

#[tokio::test]
async fn simulated_contacts_hang_up_and_the_sandbox_reports_it_signed() {
    use switchboard_carriers::sandbox::SimulatedContacts;

    let received: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> = Default::default();
    let log = received.clone();
    let router = axum::Router::new().route(
        "/status",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let log = log.clone();
                async move {
                    let signature = headers
                        .get("x-twilio-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    log.lock()
                        .unwrap()
                        .push((signature, String::from_utf8_lossy(&body).into_owned()));
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/status", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let sandbox = SandboxCarrier::in_memory()
        .with_signing_key("local-token")
        .with_simulated_contacts(SimulatedContacts {
            talk: std::time::Duration::from_millis(100),
        });
    sandbox.buy(&purchase("+15550100", "k")).await.unwrap();
    let mut outbound = call("+15550100", "+15550001");
    outbound.status_callback_url = Some(url.clone());
    let placed = sandbox.place_call(&outbound).await.unwrap();
    assert_eq!(sandbox.active_calls(), 1, "the contact is on the line");
    for _ in 0..100 {
        if !received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(sandbox.active_calls(), 0, "the contact hung up");
    let (signature, body) = received.lock().unwrap()[0].clone();
    assert!(body.contains(&format!("CallSid={}", placed.id)), "{body}");
    assert!(body.contains("CallStatus=completed"), "{body}");
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
    verify_twilio_form("local-token", &url, &params, &signature).unwrap();
}

/// Takes each call for a moment, noting what it was given and whether the call was up.
#[derive(Debug, Default)]
struct NotingCallee {
    picked: std::sync::Mutex<Vec<(String, String, usize)>>,
}

impl switchboard_carriers::sandbox::Callee for NotingCallee {
    fn pick_up(
        &self,
        call: switchboard_carriers::sandbox::PickedUpCall,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let signature = call.sandbox.sign_webhook(&call.call.answer_url, &[]);
        self.picked.lock().unwrap().push((
            call.call_id.clone(),
            signature,
            call.sandbox.active_calls(),
        ));
        Box::pin(tokio::time::sleep(Duration::from_millis(100)))
    }
}

#[tokio::test]
async fn a_callee_takes_each_call_and_the_sandbox_ends_it_when_they_hang_up() {
    let callee = std::sync::Arc::new(NotingCallee::default());
    let sandbox = SandboxCarrier::in_memory()
        .with_signing_key("local-token")
        .with_callee(callee.clone());
    sandbox.buy(&purchase("+15550100", "k")).await.unwrap();
    let placed = sandbox
        .place_call(&call("+15550100", "+15550001"))
        .await
        .unwrap();
    for _ in 0..100 {
        if sandbox.active_calls() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sandbox.active_calls(), 0, "the call ended after the callee");
    let picked = callee.picked.lock().unwrap().clone();
    assert_eq!(picked.len(), 1);
    let (id, signature, active) = &picked[0];
    assert_eq!(id, &placed.id);
    assert_eq!(*active, 1, "the call was up while the callee had it");
    // The callee signs with the account's key.
    verify_twilio_form("local-token", "http://localhost/answer", &[], signature).unwrap();
    let record = sandbox.calls().pop().unwrap();
    assert!(record.ended_at.unwrap() >= record.placed_at + Duration::from_millis(100));
}
