//! Call recording end to end (issue 19 item 1), on every backend: an agent with recording on,
//! a call through the real runtime (in-process, over a real WebSocket, its events and its
//! upload to this gateway over real HTTP), the WAV file landing in a real S3-protocol server
//! (`s3s` over a temporary folder) and playing back through the API byte for byte; the
//! `recording.saved` webhook signed; another tenant shut out; retention removing the old and
//! keeping the new; recording off storing nothing; the data folder without S3; the refusal
//! to record with nowhere to store.

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::routing::post;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_gateway::lifecycle::retention::enforce_all;
use switchboard_gateway::outbox::OutboxWorker;
use switchboard_gateway::store::{Scope, now_ms, runtime_credentials};
use switchboard_runtime::codec::G711;
use switchboard_runtime::{ConfigStore, EventSink, Metrics, RuntimeConfig, RuntimeState, Secret};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use crate::harness::{INTERNAL_TOKEN, TWILIO_TOKEN, Tenant, TestApp, apps};
use crate::outbox::{signatures, signed_by};

const ACCESS_KEY: &str = "AKIDRECORDINGTEST";
const SECRET_KEY: &str = "recording-test-secret-key";
const BUCKET: &str = "calls";
const CONSENT: &str = "This call is recorded for quality.";
const DAY: i64 = 24 * 3600 * 1000;

/// An S3-protocol server (`s3s-fs`) over `root` with one bucket, on 127.0.0.1.
async fn s3_server(root: &Path) -> SocketAddr {
    std::fs::create_dir_all(root.join(BUCKET)).unwrap();
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    addr
}

/// A customer's webhook receiver: every (headers, body) it got.
async fn hook_receiver() -> (String, Arc<Mutex<Vec<(HeaderMap, String)>>>) {
    let received: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
    let log = received.clone();
    let router = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/hook"), received)
}

/// The voice runtime in-process with the tenants' agents from the gateway's database (as
/// standalone mode embeds it), reporting to the gateway at `gateway`.
async fn runtime(app: &TestApp, gateway: SocketAddr) -> SocketAddr {
    let store = Arc::new(ConfigStore::new(Default::default()));
    switchboard_gateway::embedded_agents::reload(&app.state, &store)
        .await
        .unwrap();
    let metrics = Metrics::new("recording-test").unwrap();
    let events_url = format!("http://{gateway}/internal/v1/events");
    let token = Some(Secret::new(INTERNAL_TOKEN));
    let (events, _delivery) = EventSink::spawn(
        Some(events_url.clone()),
        token.clone(),
        metrics.clone(),
        CancellationToken::new(),
    );
    let config = RuntimeConfig {
        tenant: "test".into(),
        events_url: Some(events_url),
        internal_token: token,
        ..RuntimeConfig::default()
    };
    let state = RuntimeState::new(config, store, metrics, events);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = switchboard_runtime::router(state);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// One second of silence, one second of a 440 Hz tone, one more of silence: the caller.
fn caller_audio() -> Vec<i16> {
    let mut pcm = vec![0i16; 8000];
    pcm.extend((0..8000).map(|i| {
        let t = f64::from(i) / 8000.0;
        (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
    }));
    pcm.extend(std::iter::repeat_n(0i16, 8000));
    pcm
}

/// A Twilio-style call from the carrier's side: rings the gateway (which answers with the
/// call's id), streams `caller_audio` to the runtime at real-time pace, then hangs up.
/// Returns the gateway's call id.
async fn call(
    app: &TestApp,
    runtime: SocketAddr,
    tenant: &Tenant,
    number: &str,
    sid: &str,
) -> String {
    let voice = app
        .twilio_post(
            "/api/v1/webhooks/twilio/voice",
            TWILIO_TOKEN,
            &[("CallSid", sid), ("From", "+15557770000"), ("To", number)],
        )
        .await;
    assert_eq!(voice.status, StatusCode::OK, "{}", voice.text);
    let start =
        voice.text.find("name=\"callId\" value=\"").unwrap() + "name=\"callId\" value=\"".len();
    let call_id = voice.text[start..].split('"').next().unwrap().to_owned();

    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{runtime}/media/twilio"))
        .await
        .unwrap();
    let (mut sink, mut stream) = socket.split();
    // Drain what the agent sends (its audio, marks) so the socket never backs up.
    let reader = tokio::spawn(async move {
        let mut frames = 0usize;
        while let Some(Ok(message)) = stream.next().await {
            if let WsMessage::Text(text) = message
                && text.contains("\"media\"")
            {
                frames += 1;
            }
        }
        frames
    });
    let params =
        json!({"callId": call_id, "tenant": tenant.slug, "from": "+15557770000", "to": number});
    let start = json!({"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":sid,"tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":params},"streamSid":"MZ1"});
    sink.send(WsMessage::text(start.to_string())).await.unwrap();
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for (chunk, frame) in caller_audio().chunks(160).enumerate() {
        ticker.tick().await;
        let mut bytes = Vec::new();
        G711::Mulaw.encode_into(frame, &mut bytes);
        let payload = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let media = json!({"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":chunk.to_string(),"timestamp":"0","payload":payload},"streamSid":"MZ1"});
        sink.send(WsMessage::text(media.to_string())).await.unwrap();
    }
    let stop = json!({"event":"stop","sequenceNumber":"99","stop":{"accountSid":"AC1","callSid":sid},"streamSid":"MZ1"});
    sink.send(WsMessage::text(stop.to_string())).await.unwrap();
    let frames = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .unwrap()
        .unwrap();
    assert!(frames > 0, "the agent said nothing");
    call_id
}

/// Polls `GET …/calls/{id}/recording` until it answers 200 (the upload follows the hang-up).
async fn wait_for_recording(app: &TestApp, tenant: &Tenant, call_id: &str) -> Value {
    let path = format!("/api/v1/tenants/{}/calls/{call_id}/recording", tenant.slug);
    for _ in 0..200 {
        let reply = app
            .json(Method::GET, &path, Some(&tenant.access), None)
            .await;
        if reply.status == StatusCode::OK {
            return reply.body;
        }
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{}: no recording of {call_id}", app.backend);
}

async fn download(
    app: &TestApp,
    tenant: &Tenant,
    call_id: &str,
    token: &str,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let request = Request::get(format!(
        "/api/v1/tenants/{}/calls/{call_id}/recording/audio",
        tenant.slug
    ))
    .header("authorization", format!("Bearer {token}"))
    .body(Body::empty())
    .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request)
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, bytes.to_vec())
}

fn rms(samples: impl Iterator<Item = i16>) -> f64 {
    let (sum, n) = samples.fold((0f64, 0usize), |(s, n), x| {
        (s + f64::from(x).powi(2), n + 1)
    });
    (sum / n.max(1) as f64).sqrt()
}

/// Both legs of a dual-channel WAV: (caller, agent).
fn legs(wav: &[u8]) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::new(Cursor::new(wav)).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let caller = samples.iter().step_by(2).copied().collect();
    let agent = samples.iter().skip(1).step_by(2).copied().collect();
    (caller, agent)
}

/// A WAV of `seconds` of silence on two channels, as a runtime uploads it.
fn silent_wav(seconds: usize) -> Vec<u8> {
    let mut recorder = switchboard_runtime::recording::Recorder::new(
        switchboard_crds::recording::RecordingChannels::Dual,
        60,
    );
    recorder.caller(&vec![0; 8000 * seconds]);
    recorder.wav().unwrap()
}

async fn upload(
    app: &TestApp,
    tenant: &str,
    call_id: &str,
    token: &str,
    wav: Vec<u8>,
) -> (StatusCode, String) {
    let reply = app
        .raw(
            Request::put(format!(
                "/internal/v1/tenants/{tenant}/calls/{call_id}/recording"
            ))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "audio/wav")
            .body(Body::from(wav))
            .unwrap(),
        )
        .await;
    (reply.status, reply.text)
}

fn object(root: &Path, key: &str) -> PathBuf {
    root.join(BUCKET).join(key)
}

#[tokio::test]
async fn a_recorded_call_lands_in_the_tenants_bucket_and_plays_back() {
    // The S3 server and the webhook receiver are local stand-ins on 127.0.0.1: allowed for
    // this test only.
    let allow = ["--outbound-allow-private".to_owned(), "true".to_owned()];
    for app in apps("recording_s3", &allow).await {
        println!("recording_s3: backend {}", app.backend);
        let s3_root = tempfile::tempdir().unwrap();
        let s3 = s3_server(s3_root.path()).await;
        let gateway = app.serve().await;
        let a = app.signup("rec-a@example.com", "Rec A").await;
        let b = app.signup("rec-b@example.com", "Rec B").await;
        app.route_number("+15550700", &a.id, "twilio", "platform")
            .await;
        app.route_number("+15550701", &b.id, "twilio", "platform")
            .await;
        let agent_path = |t: &Tenant| format!("/api/v1/tenants/{}/agents/default", t.slug);

        // Without storage (no s3 credential, no recordings folder) recording is refused.
        let refused = app
            .json(
                Method::PATCH,
                &agent_path(&a),
                Some(&a.access),
                Some(json!({"recording": {"enabled": true}})),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!(refused.body["error"]["field"], "recording");
        assert!(refused.text.contains("s3"), "{}", refused.text);

        // An incomplete s3 credential is refused naming the field.
        let credentials = format!("/api/v1/tenants/{}/credentials", a.slug);
        let incomplete = app
            .json(
                Method::POST,
                &credentials,
                Some(&a.access),
                Some(json!({
                "provider": "s3", "label": "calls", "secret": SECRET_KEY,
                "metadata": {"bucket": BUCKET, "endpoint": format!("http://{s3}")}})),
            )
            .await;
        assert_eq!(
            incomplete.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            incomplete.text
        );
        assert_eq!(incomplete.body["error"]["field"], "metadata.access_key_id");
        let stored = app
            .json(
                Method::POST,
                &credentials,
                Some(&a.access),
                Some(json!({
                "provider": "s3", "label": "calls", "secret": SECRET_KEY,
                "metadata": {"bucket": BUCKET, "access_key_id": ACCESS_KEY,
                             "endpoint": format!("http://{s3}"), "region": "us-east-1"}})),
            )
            .await;
        assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
        assert!(!stored.text.contains(SECRET_KEY));

        let bad_consent = app
            .json(
                Method::PATCH,
                &agent_path(&a),
                Some(&a.access),
                Some(json!({"recording": {"enabled": true, "consent": " "}})),
            )
            .await;
        assert_eq!(
            bad_consent.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            bad_consent.text
        );
        assert_eq!(bad_consent.body["error"]["field"], "recording.consent");
        let on = app
            .json(
                Method::PATCH,
                &agent_path(&a),
                Some(&a.access),
                Some(
                    json!({"recording": {"enabled": true, "channels": "dual", "consent": CONSENT}}),
                ),
            )
            .await;
        assert_eq!(on.status, StatusCode::OK, "{}", on.text);
        assert_eq!(on.body["recording"]["enabled"], true);

        let (hook_url, hooks) = hook_receiver().await;
        let endpoint = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/webhooks", a.slug),
                Some(&a.access),
                Some(json!({"url": hook_url, "events": ["recording.saved"]})),
            )
            .await;
        assert_eq!(endpoint.status, StatusCode::CREATED, "{}", endpoint.text);
        let hook_secret = endpoint.body["secret"].as_str().unwrap().to_owned();

        // The call: tenant A's agent records; tenant B's (recording off) does not.
        let runtime = runtime(&app, gateway).await;
        let recorded = call(&app, runtime, &a, "+15550700", "CArec1").await;
        let unrecorded = call(&app, runtime, &b, "+15550701", "CArec2").await;

        let meta = wait_for_recording(&app, &a, &recorded).await;
        assert_eq!(meta["callId"], recorded.as_str());
        assert_eq!(meta["format"], "wav");
        assert_eq!(meta["channels"], 2);
        assert_eq!(meta["storage"], "s3");
        assert_eq!(meta["bucket"], BUCKET);
        let key = meta["objectKey"].as_str().unwrap().to_owned();
        assert_eq!(key, format!("recordings/{recorded}.wav"));
        let duration = meta["durationMs"].as_i64().unwrap();
        assert!((2900..=3600).contains(&duration), "duration {duration} ms");

        // The object is in the S3 server's folder; the API streams exactly those bytes.
        let in_bucket = std::fs::read(object(s3_root.path(), &key)).unwrap();
        assert_eq!(meta["bytes"].as_u64().unwrap(), in_bucket.len() as u64);
        let (status, headers, played) = download(&app, &a, &recorded, &a.access).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "audio/wav");
        assert_eq!(
            played, in_bucket,
            "playback is byte-identical to the stored object"
        );

        // Both legs, on the call's clock: the caller's tone starts exactly one second in, on
        // the left; the agent's consent and greeting are on the right from the start.
        let (caller, agent) = legs(&played);
        let first_sound = caller.iter().position(|&s| s != 0).unwrap();
        assert!(
            (8000..8010).contains(&first_sound),
            "caller tone at sample {first_sound}"
        );
        assert!(rms(caller[8000..16000].iter().copied()) > 2000.0);
        assert!(rms(caller[..8000].iter().copied()) < 1.0);
        assert!(
            rms(agent.iter().copied()) > 100.0,
            "the agent's leg is silent"
        );
        assert!(
            rms(agent[..8000].iter().copied()) > 100.0,
            "the agent did not speak first"
        );

        // The consent announcement came first in what the agent said (the runtime's events
        // travel apart from the upload: wait for them).
        let transcript_path = format!("/api/v1/tenants/{}/calls/{recorded}/transcript", a.slug);
        let mut first_agent_turn = String::new();
        for _ in 0..100 {
            let transcript = app
                .json(Method::GET, &transcript_path, Some(&a.access), None)
                .await;
            if let Some(turn) = transcript.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["role"] == "agent")
            {
                first_agent_turn = turn["text"].as_str().unwrap_or_default().to_owned();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            first_agent_turn.starts_with(CONSENT),
            "{first_agent_turn:?}"
        );

        // Recording off: nothing stored anywhere.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let none = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/calls/{unrecorded}/recording", b.slug),
                Some(&b.access),
                None,
            )
            .await;
        assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.text);
        assert_eq!(app.count("SELECT COUNT(*) FROM call_recordings").await, 1);
        assert!(!object(s3_root.path(), &format!("recordings/{unrecorded}.wav")).exists());

        // Another tenant cannot reach it: 404 under its own slug and under A's (a tenant one
        // is not a member of does not exist for them).
        let (status, _, _) = download(&app, &b, &recorded, &b.access).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let foreign = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/calls/{recorded}/recording", a.slug),
                Some(&b.access),
                None,
            )
            .await;
        assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.text);
        let (status, _, _) = download(&app, &a, &recorded, &b.access).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Nor can B's runtime credential upload for A.
        let mut tx = app.state.store.read(&Scope::tenant(&b.id)).await.unwrap();
        let epoch = runtime_credentials::epoch(&mut tx, &b.id)
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
        let b_runtime = app.state.runtime_credentials.issue(&b.id, epoch);
        let (status, text) = upload(&app, &a.slug, "intruder", &b_runtime, silent_wav(1)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
        // What is not a recording is refused.
        let (status, text) =
            upload(&app, &a.slug, "junk", INTERNAL_TOKEN, b"RIFF....".to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");

        // `recording.saved`, signed with the endpoint's secret.
        let worker = OutboxWorker::new(
            app.state.store.clone(),
            app.state.keyring.clone(),
            reqwest::Client::new(),
            true,
        );
        assert_eq!(worker.run_once().await.unwrap(), 1);
        let (headers, body) = hooks.lock().unwrap()[0].clone();
        assert_eq!(signatures(&headers).len(), 1);
        assert!(signed_by(&headers, &body, &hook_secret));
        let payload: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(payload["type"], "recording.saved");
        assert_eq!(payload["data"]["callId"], recorded.as_str());
        assert_eq!(payload["data"]["sha256"], meta["sha256"]);

        // A retried upload changes nothing (200, same row, no second webhook).
        let (status, text) = upload(&app, &a.slug, &recorded, INTERNAL_TOKEN, silent_wav(1)).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(
            std::fs::read(object(s3_root.path(), &key)).unwrap(),
            in_bucket
        );
        assert_eq!(worker.run_once().await.unwrap(), 0);

        // Retention: an old recording (older than the free plan's 30 days) goes, file and
        // row; the new one stays.
        let (status, text) = upload(&app, &a.slug, "old-call", INTERNAL_TOKEN, silent_wav(1)).await;
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let old_key = "recordings/old-call.wav";
        assert!(object(s3_root.path(), old_key).exists());
        let pool = app.admin_pool().await;
        sqlx::query("UPDATE call_recordings SET created_at = $1 WHERE call_id = 'old-call'")
            .bind(now_ms() - 40 * DAY)
            .execute(&pool)
            .await
            .unwrap();
        let removed = enforce_all(&app.state, now_ms()).await.unwrap();
        assert_eq!(removed.recordings, 1);
        assert!(
            !object(s3_root.path(), old_key).exists(),
            "the old file is gone"
        );
        assert!(object(s3_root.path(), &key).exists(), "the new file stays");
        assert_eq!(app.count("SELECT COUNT(*) FROM call_recordings").await, 1);
        wait_for_recording(&app, &a, &recorded).await;
        app.finish().await;
    }
}

#[tokio::test]
async fn without_s3_outside_kubernetes_recordings_go_to_the_data_folder() {
    let folder = tempfile::tempdir().unwrap();
    let args = [
        "--recordings-dir".to_owned(),
        folder.path().display().to_string(),
    ];
    for app in apps("recording_local", &args).await {
        println!("recording_local: backend {}", app.backend);
        let a = app
            .signup(&format!("local-{}@example.com", app.backend), "Local Rec")
            .await;
        let on = app
            .json(
                Method::PATCH,
                &format!("/api/v1/tenants/{}/agents/default", a.slug),
                Some(&a.access),
                Some(json!({"recording": {"enabled": true, "channels": "mixed"}})),
            )
            .await;
        assert_eq!(on.status, StatusCode::OK, "{}", on.text);
        let wav = silent_wav(2);
        let call_id = format!("local-{}", app.backend);
        let (status, text) = upload(&app, &a.slug, &call_id, INTERNAL_TOKEN, wav.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let file = folder.path().join(&a.id).join(format!("{call_id}.wav"));
        assert_eq!(std::fs::read(&file).unwrap(), wav);
        let meta = wait_for_recording(&app, &a, &call_id).await;
        assert_eq!(meta["storage"], "local");
        assert_eq!(meta["durationMs"], 2000);
        let (status, _, played) = download(&app, &a, &call_id, &a.access).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(played, wav);
        app.finish().await;
    }
}
