//! `switchboard call` end to end against a local stand-in for the gateway that behaves as the
//! real one must: it verifies the Twilio signature with `switchboard-carriers`, answers TwiML,
//! accepts the media WebSocket, checks the caller's frames (format, order, pace), and talks
//! back with media, a transcript line, marks and a `clear`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use switchboard_carriers::signatures::verify_twilio_form;
use switchboard_runtime::codec::G711;

const AUTH_TOKEN: &str = "test-auth-token";
const REFUSED_NUMBER: &str = "+15550199";
/// Agent audio frames sent before the first mark.
const FIRST_REPLY_FRAMES: usize = 10;
/// Agent audio frames sent in the burst that `clear` cuts short.
const BURST_FRAMES: usize = 100;

/// What the stand-in saw.
#[derive(Default)]
struct Seen {
    webhook_params: BTreeMap<String, String>,
    signature_ok: Option<bool>,
    status_params: Option<(bool, BTreeMap<String, String>)>,
    connected_first: bool,
    start: Option<Value>,
    media: Vec<(Instant, Value)>,
    marks: Vec<(Instant, String)>,
    stop_last: bool,
    after_stop: usize,
    burst_sent: Option<Instant>,
    sent_first_reply: Vec<u8>,
    sequence_numbers: Vec<String>,
}

#[derive(Clone)]
struct Gateway {
    base: String,
    seen: Arc<Mutex<Seen>>,
}

async fn start_gateway() -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let gateway = Gateway {
        base: format!("http://{address}"),
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/api/v1/webhooks/twilio/voice", post(voice))
        .route("/api/v1/webhooks/twilio/status", post(status))
        .route("/media", any(media))
        .with_state(gateway.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    gateway
}

async fn voice(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    let url = format!("{}/api/v1/webhooks/twilio/voice", gateway.base);
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ok = verify_twilio_form(AUTH_TOKEN, &url, &params, signature).is_ok();
    {
        let mut seen = gateway.seen.lock().unwrap();
        seen.signature_ok = Some(ok);
        seen.webhook_params = params.iter().cloned().collect();
    }
    if !ok {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"error": {"code": "invalid_signature", "message": "X-Twilio-Signature does not match"}})),
        )
            .into_response();
    }
    let to = params
        .iter()
        .find(|(k, _)| k == "To")
        .map(|(_, v)| v.as_str());
    let twiml = if to == Some(REFUSED_NUMBER) {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Sorry, this account has reached its monthly call limit.</Say><Hangup/></Response>".to_owned()
    } else {
        let ws = gateway.base.replace("http://", "ws://");
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"{ws}/media\"><Parameter name=\"callToken\" value=\"tok.123\"/><Parameter name=\"tenant\" value=\"acme\"/></Stream></Connect></Response>"
        )
    };
    ([("content-type", "text/xml")], twiml).into_response()
}

async fn status(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> StatusCode {
    let url = format!("{}/api/v1/webhooks/twilio/status", gateway.base);
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ok = verify_twilio_form(AUTH_TOKEN, &url, &params, signature).is_ok();
    gateway.seen.lock().unwrap().status_params = Some((ok, params.into_iter().collect()));
    if ok {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::FORBIDDEN
    }
}

async fn media(State(gateway): State<Gateway>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| converse(socket, gateway.seen))
}

/// μ-law frames of a 300 Hz tone: the "agent's voice".
fn agent_frames(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|f| {
            let samples: Vec<i16> = (0..160)
                .map(|n| {
                    let t = (f * 160 + n) as f32 / 8000.0;
                    (8000.0 * (2.0 * std::f32::consts::PI * 300.0 * t).sin()) as i16
                })
                .collect();
            let mut bytes = Vec::new();
            G711::Mulaw.encode_into(&samples, &mut bytes);
            bytes
        })
        .collect()
}

fn outbound(stream_sid: &str, event: Value) -> Message {
    let mut event = event;
    event["streamSid"] = json!(stream_sid);
    Message::Text(event.to_string().into())
}

fn media_message(stream_sid: &str, payload: &[u8]) -> Message {
    outbound(
        stream_sid,
        json!({"event": "media", "media": {"payload": BASE64.encode(payload)}}),
    )
}

/// The stand-in's side of the stream: record everything; after 10 caller frames answer with
/// 10 frames and mark `m1`; once `m1` is echoed send a transcript line, a 2 s burst and mark
/// `m2`, and 200 ms later `clear`.
async fn converse(mut socket: WebSocket, seen: Arc<Mutex<Seen>>) {
    let mut stream_sid = String::new();
    let mut first = true;
    while let Some(Ok(message)) = socket.recv().await {
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(text.as_str()).unwrap();
        let event = value["event"].as_str().unwrap_or_default().to_owned();
        let now = Instant::now();
        let media_count;
        {
            let mut s = seen.lock().unwrap();
            if first {
                s.connected_first = event == "connected";
                first = false;
            }
            if s.stop_last {
                s.after_stop += 1;
            }
            if let Some(number) = value["sequenceNumber"].as_str() {
                s.sequence_numbers.push(number.to_owned());
            }
            match event.as_str() {
                "start" => {
                    stream_sid = value["streamSid"].as_str().unwrap().to_owned();
                    s.start = Some(value.clone());
                }
                "media" => s.media.push((now, value.clone())),
                "mark" => s
                    .marks
                    .push((now, value["mark"]["name"].as_str().unwrap().to_owned())),
                "stop" => s.stop_last = true,
                _ => {}
            }
            media_count = s.media.len();
        }
        if event == "media" && media_count == 10 {
            let frames = agent_frames(FIRST_REPLY_FRAMES);
            seen.lock().unwrap().sent_first_reply = frames.concat();
            for frame in &frames {
                socket
                    .send(media_message(&stream_sid, frame))
                    .await
                    .unwrap();
            }
            socket
                .send(outbound(
                    &stream_sid,
                    json!({"event": "mark", "mark": {"name": "m1"}}),
                ))
                .await
                .unwrap();
        }
        if event == "mark" && value["mark"]["name"] == "m1" {
            socket
                .send(outbound(
                    &stream_sid,
                    json!({"event": "transcript", "transcript": {"role": "agent", "text": "Hello, how can I help?"}}),
                ))
                .await
                .unwrap();
            for frame in agent_frames(BURST_FRAMES) {
                socket
                    .send(media_message(&stream_sid, &frame))
                    .await
                    .unwrap();
            }
            socket
                .send(outbound(
                    &stream_sid,
                    json!({"event": "mark", "mark": {"name": "m2"}}),
                ))
                .await
                .unwrap();
            seen.lock().unwrap().burst_sent = Some(Instant::now());
            tokio::time::sleep(Duration::from_millis(200)).await;
            socket
                .send(outbound(&stream_sid, json!({"event": "clear"})))
                .await
                .unwrap();
        }
    }
}

/// A 1 s, 16 kHz, 16-bit mono WAV of a 440 Hz tone: the caller.
fn caller_wav(dir: &Path) -> PathBuf {
    let path = dir.join("caller.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    for n in 0..16_000 {
        let t = n as f32 / 16_000.0;
        writer
            .write_sample((10_000.0 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()) as i16)
            .unwrap();
    }
    writer.finalize().unwrap();
    path
}

struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn switchboard(args: Vec<String>, dir: &Path) -> Run {
    let config = dir.join("session.json");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .env("SWITCHBOARD_CONFIG", config)
            .env_remove("SWITCHBOARD_URL")
            .env_remove("SWITCHBOARD_SANDBOX_AUTH_TOKEN")
            .env_remove("SWITCHBOARD_PUBLIC_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    Run {
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn call_args(gateway: &Gateway, to: &str, audio: &Path, out: &Path, token: &str) -> Vec<String> {
    [
        "--url",
        &gateway.base,
        "call",
        "--to",
        to,
        "--from",
        "+15551234567",
        "--audio",
        &audio.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--auth-token",
        token,
        "--say-silence-seconds",
        "0.5",
        "--idle-seconds",
        "0.6",
        "--max-seconds",
        "20",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    (
        spec,
        reader.into_samples::<i16>().map(Result::unwrap).collect(),
    )
}

fn is_sid(value: &str, prefix: &str) -> bool {
    value.len() == 34
        && value.starts_with(prefix)
        && value[2..].chars().all(|c| c.is_ascii_hexdigit())
}

#[tokio::test]
async fn a_call_streams_paced_mulaw_records_the_agent_and_handles_marks_and_clear() {
    let gateway = start_gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let audio = caller_wav(dir.path());
    let out = dir.path().join("agent.wav");
    let run = switchboard(
        call_args(&gateway, "+15550100", &audio, &out, AUTH_TOKEN),
        dir.path(),
    )
    .await;
    assert_eq!(
        run.status,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );

    println!("{}", run.stdout);
    let seen = gateway.seen.lock().unwrap();
    // The webhook: signed as Twilio signs, with Twilio's parameters.
    assert_eq!(seen.signature_ok, Some(true));
    let params = &seen.webhook_params;
    assert!(is_sid(&params["CallSid"], "CA"), "{params:?}");
    assert!(is_sid(&params["AccountSid"], "AC"), "{params:?}");
    assert_eq!(params["From"], "+15551234567");
    assert_eq!(params["To"], "+15550100");
    assert_eq!(params["CallStatus"], "ringing");
    assert_eq!(params["Direction"], "inbound");
    assert_eq!(params["ApiVersion"], "2010-04-01");

    // The stream: connected, then start with the TwiML parameters.
    assert!(seen.connected_first);
    let start = seen.start.as_ref().unwrap();
    assert_eq!(start["sequenceNumber"], "1");
    assert_eq!(start["start"]["callSid"], params["CallSid"].as_str());
    assert_eq!(
        start["start"]["customParameters"],
        json!({"callToken": "tok.123", "tenant": "acme"})
    );
    assert_eq!(start["start"]["mediaFormat"]["encoding"], "audio/x-mulaw");
    let stream_sid = start["streamSid"].as_str().unwrap();
    assert!(is_sid(stream_sid, "MZ"));

    // Every message after `connected` is numbered 1, 2, 3 … (marks and stop included).
    let expected_numbers: Vec<String> = (1..=seen.sequence_numbers.len())
        .map(|n| n.to_string())
        .collect();
    assert_eq!(seen.sequence_numbers, expected_numbers);
    // Media: 160-byte μ-law frames, numbered in order, at 20 ms.
    // 1 s of audio + 0.5 s of silence = 75 frames at least, then line silence while waiting.
    assert!(seen.media.len() >= 75, "{} frames", seen.media.len());
    for (i, (_, frame)) in seen.media.iter().enumerate() {
        assert_eq!(frame["streamSid"], stream_sid);
        assert_eq!(frame["media"]["chunk"], (i + 1).to_string());
        assert_eq!(frame["media"]["timestamp"], (i * 20).to_string());
        assert_eq!(frame["media"]["track"], "inbound");
        let payload = BASE64
            .decode(frame["media"]["payload"].as_str().unwrap())
            .unwrap();
        assert_eq!(payload.len(), 160);
        let silent = payload.iter().all(|b| *b == 0xFF);
        // Frames 0..50 carry the tone; 50..75 are the appended silence.
        if i < 50 {
            assert!(!silent, "frame {i} should carry the caller's tone");
        } else if i >= 50 {
            assert!(silent, "frame {i} should be silence");
        }
    }
    let first = seen.media.first().unwrap().0;
    let last = seen.media.last().unwrap().0;
    let span = last - first;
    let ideal = Duration::from_millis(20 * (seen.media.len() as u64 - 1));
    assert!(
        span >= ideal.mul_f64(0.9),
        "sent too fast: {span:?} for {} frames",
        seen.media.len()
    );
    assert!(
        span <= ideal.mul_f64(1.3) + Duration::from_millis(300),
        "sent too slowly: {span:?}"
    );

    // Marks echoed in order; m1 only after its 10 frames (200 ms) had played.
    let names: Vec<&str> = seen.marks.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, vec!["m1", "m2"]);
    let m1_at = seen.marks[0].0;
    let tenth = seen.media[9].0;
    assert!(
        m1_at - tenth >= Duration::from_millis(150),
        "m1 echoed after {:?}",
        m1_at - tenth
    );
    // m2 came back at the clear, long before its 2 s of audio could have played.
    let m2_delay = seen.marks[1].0 - seen.burst_sent.unwrap();
    assert!(
        m2_delay < Duration::from_millis(1500),
        "m2 echoed after {m2_delay:?}"
    );
    assert!(seen.stop_last, "the caller hangs up with stop");
    // Then the carrier reports the call completed, signed too.
    let (status_signed, status) = seen.status_params.clone().expect("a status callback");
    assert!(status_signed);
    assert_eq!(status["CallSid"], params["CallSid"]);
    assert_eq!(status["CallStatus"], "completed");
    let duration: u64 = status["CallDuration"].parse().unwrap();
    assert!((2..=10).contains(&duration), "{duration}");
    assert_eq!(status["Duration"], "1");
    assert_eq!(seen.after_stop, 0, "nothing after stop");

    // The recording: 8 kHz 16-bit mono; first the 10 reply frames exactly, then the part of
    // the burst played before the clear (about 200 ms), not the whole 2 s.
    let (spec, samples) = read_wav(&out);
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (8000, 1, 16)
    );
    let mut expected = Vec::new();
    G711::Mulaw.decode_into(&seen.sent_first_reply, &mut expected);
    assert_eq!(&samples[..expected.len()], &expected[..]);
    let burst_played = samples.len() - expected.len();
    assert!(
        (2 * 160..=40 * 160).contains(&burst_played),
        "{burst_played} samples of the burst were recorded"
    );

    // What people see: the transcript line, the clear, and the summary.
    assert!(
        run.stdout.contains("agent: Hello, how can I help?"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("clear: dropped"), "{}", run.stdout);
    let summary = run.stdout.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!("call {} done in", params["CallSid"])),
        "{summary}"
    );
    assert!(summary.contains("(you hung up)"), "{summary}");
    assert!(summary.contains("sent 1.00s of audio"), "{summary}");
    assert!(summary.contains("2 marks, 1 clear"), "{summary}");
    assert!(
        summary.contains(&format!("-> {}", out.display())),
        "{summary}"
    );
}

#[tokio::test]
async fn json_output_reports_timings_marks_and_drops() {
    let gateway = start_gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let audio = caller_wav(dir.path());
    let out = dir.path().join("agent.wav");
    let mut args = call_args(&gateway, "+15550100", &audio, &out, AUTH_TOKEN);
    args.insert(0, "--json".into());
    let run = switchboard(args, dir.path()).await;
    assert_eq!(run.status, Some(0), "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(run.stdout.trim()).expect("one JSON document");
    assert_eq!(report["outcome"], "connected");
    assert_eq!(report["endedBy"], "caller");
    assert_eq!(report["marks"], json!(["m1", "m2"]));
    assert_eq!(report["clears"], 1);
    assert_eq!(report["streamParameters"], json!(["callToken", "tenant"]));
    assert_eq!(report["callerAudioMs"], 1000);
    assert_eq!(report["transcript"][0]["text"], "Hello, how can I help?");
    // The stand-in answers after 10 frames: first audio at ~200 ms, before the caller's audio ended.
    let first = report["firstAgentAudioMs"].as_u64().unwrap();
    assert!((150..1000).contains(&first), "{first}");
    assert!(report["responseLatencyMs"].is_null());
    assert!(report["agentTurns"].as_u64().unwrap() >= 1);
    assert!(report["droppedAudioMs"].as_u64().unwrap() >= 1000);
    assert!(report["agentAudioMs"].as_u64().unwrap() >= 200);
    assert!(report["totalMs"].as_u64().unwrap() >= 1500);
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(report["statusCallbackAccepted"], true);
    assert!(
        !run.stdout.contains("tok.123"),
        "stream parameter values are not printed"
    );
}

#[tokio::test]
async fn a_refused_call_prints_what_was_said_and_exits_3() {
    let gateway = start_gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let audio = caller_wav(dir.path());
    let out = dir.path().join("agent.wav");
    let run = switchboard(
        call_args(&gateway, REFUSED_NUMBER, &audio, &out, AUTH_TOKEN),
        dir.path(),
    )
    .await;
    assert_eq!(run.status, Some(3), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("call refused: the gateway said \"Sorry, this account has reached its monthly call limit.\" and hung up"),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "no recording for a refused call");
    assert!(
        gateway.seen.lock().unwrap().start.is_none(),
        "no media stream was opened"
    );
    assert!(gateway.seen.lock().unwrap().status_params.is_none());

    let mut args = call_args(&gateway, REFUSED_NUMBER, &audio, &out, AUTH_TOKEN);
    args.insert(0, "--json".into());
    let run = switchboard(args, dir.path()).await;
    assert_eq!(run.status, Some(3));
    let body: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(body["outcome"], "refused");
    assert_eq!(body["hungUp"], true);
    assert_eq!(
        body["said"][0],
        "Sorry, this account has reached its monthly call limit."
    );
}

#[tokio::test]
async fn a_wrong_auth_token_shows_the_gateway_error() {
    let gateway = start_gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let audio = caller_wav(dir.path());
    let out = dir.path().join("agent.wav");
    let run = switchboard(
        call_args(&gateway, "+15550100", &audio, &out, "wrong-token"),
        dir.path(),
    )
    .await;
    assert_eq!(run.status, Some(1));
    assert_eq!(gateway.seen.lock().unwrap().signature_ok, Some(false));
    assert!(
        run.stderr
            .contains("X-Twilio-Signature does not match (invalid_signature, HTTP 403)"),
        "{}",
        run.stderr
    );

    let mut args = call_args(&gateway, "+15550100", &audio, &out, "wrong-token");
    args.insert(0, "--json".into());
    let run = switchboard(args, dir.path()).await;
    assert_eq!(run.status, Some(1));
    let error: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(error["error"]["code"], "invalid_signature");
    assert_eq!(error["error"]["status"], 403);

    let missing = dir.path().join("missing.wav");
    let run = switchboard(
        call_args(&gateway, "+15550100", &missing, &out, AUTH_TOKEN),
        dir.path(),
    )
    .await;
    assert_eq!(run.status, Some(1));
    assert!(run.stderr.contains("missing.wav"), "{}", run.stderr);
}
