//! Whole calls over a real WebSocket with the offline builtin providers.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use switchboard_crds::events::{EndReason, EventKind};
use switchboard_crds::tenant::AgentSpec;
use switchboard_runtime::ProviderKeys;
use switchboard_runtime::vad::level_dbfs;

/// A carrier's frame pace.
const FRAME: Duration = Duration::from_millis(20);

#[tokio::test]
async fn twilio_call_greets_echoes_the_caller_and_reports_events() {
    let runtime = start_runtime(builtin_agent(), ProviderKeys::default(), |_| {}).await;
    let mut carrier = FakeCarrier::connect(runtime.addr, Dialect::Twilio).await;
    carrier.start(params()).await;

    // The greeting is heard: paced media frames followed by the mark of its only segment.
    carrier
        .wait_for("greeting", |m| {
            m.iter()
                .any(|m| m["event"] == "mark" && m["mark"]["name"] == "t0s0")
        })
        .await;
    let greeting_frames = carrier.media_frames();
    assert!(
        greeting_frames > 50,
        "greeting too short: {greeting_frames}"
    );
    let first = &carrier.messages()[0];
    assert_eq!(first["streamSid"], "MZ1");

    // Garbage in the middle of a call is survived.
    carrier.send_text("not json".into()).await;
    carrier
        .send_json(json!({"event":"media","media":{"payload":"@@@"}}))
        .await;
    carrier.send_json(json!({"event":"wat"})).await;

    // A caller turn: 1 s of speech, then silence beyond the 300 ms end of turn.
    carrier.send_audio(&speech(1.0), Duration::ZERO).await;
    carrier.send_audio(&silence(0.6), Duration::ZERO).await;
    carrier
        .wait_for("echo", |m| {
            m.iter()
                .any(|m| m["event"] == "mark" && m["mark"]["name"] == "t1s0")
        })
        .await;
    let echo_frames = carrier.media_frames() - greeting_frames;
    // The echo agent plays the utterance back (1 s plus a little pre-roll = ~50-60 frames).
    assert!(
        (45..=70).contains(&echo_frames),
        "echo frames: {echo_frames}"
    );

    carrier.stop().await;
    let events = runtime.gateway.wait_for_call_end().await;
    let turns = transcript(&events);
    assert_eq!(turns[0].0, "Agent");
    assert_eq!(turns[0].1, "Hello! How can I help you today?");
    assert_eq!(
        turns[1],
        ("Caller".into(), "[utterance 1.0s]".into(), None, false)
    );
    assert_eq!(turns[2].1, "You said: [utterance 1.0s]");
    assert!(!turns[2].3);
    assert!(
        events
            .iter()
            .all(|e| e.call_id == "call-1" && e.tenant == "acme")
    );
    assert!(
        matches!(events[0].kind, EventKind::CallStarted { ref carrier, .. } if carrier == "twilio")
    );
    let usage = events.iter().find_map(|e| match &e.kind {
        EventKind::Usage {
            stt_seconds,
            tts_characters,
            ..
        } => Some((*stt_seconds, *tts_characters)),
        _ => None,
    });
    let (stt_seconds, tts_characters) = usage.expect("usage event");
    assert!((0.9..1.4).contains(&stt_seconds), "{stt_seconds}");
    assert!(tts_characters >= 32, "{tts_characters}");
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::CallEnded {
            reason: EndReason::CallerHangup,
            ..
        }
    )));
    let mut ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    assert_eq!(*runtime.gateway.unauthorised.lock().unwrap(), 0);
}

#[tokio::test]
async fn barge_in_clears_audio_and_records_what_was_heard() {
    let mut agent = builtin_agent();
    // A long greeting to interrupt.
    agent.greeting = "Welcome to the example company. This greeting is deliberately long so that the caller has plenty of time to interrupt it before it is over, which is exactly what this test does.".into();
    let runtime = start_runtime(agent, ProviderKeys::default(), |_| {}).await;
    let mut carrier = FakeCarrier::connect(runtime.addr, Dialect::Telnyx).await;
    carrier.start(params()).await;
    carrier
        .wait_for("greeting audio", |m| {
            m.iter().filter(|m| m["event"] == "media").count() > 40
        })
        .await;
    // Speak over the agent at real-time pace, noting how long the caller went on talking
    // once the clear had arrived. The synthesised words end in a little silence: the words
    // are over at the last frame with a voice in it.
    let spoken = words("Hold on, wait a second, I need to ask you something else.");
    let voiced = spoken
        .chunks(160)
        .rposition(|frame| level_dbfs(frame) > -50.0)
        .map_or(0, |last| (last + 1) * 160);
    let (talk, trailing) = spoken.split_at(voiced);
    let mut talked_after_clear = 0.0;
    for part in talk.chunks(160 * 10) {
        let cleared = carrier.messages().iter().any(|m| m["event"] == "clear");
        carrier.send_audio(part, FRAME).await;
        if cleared {
            talked_after_clear += part.len() as f32 / 8000.0;
        }
    }
    // Everything received so far arrived while the caller talked.
    let words_over = carrier.messages().len();
    let messages = carrier.messages();
    let clear = messages[..words_over]
        .iter()
        .position(|m| m["event"] == "clear")
        .expect("the agent is cleared while the caller talks");
    assert_eq!(
        messages[clear],
        json!({"event":"clear"}),
        "Telnyx dialect has no stream id"
    );
    assert!(
        talked_after_clear >= 1.0,
        "the caller talked on for {talked_after_clear} s after the clear"
    );
    let during = messages[clear..words_over]
        .iter()
        .filter(|m| m["event"] == "media")
        .count();
    assert_eq!(during, 0, "audio after the clear while the caller talked");

    // The line goes on, as a carrier's does (the words' own trailing silence, then line
    // noise), until the agent has replied to the caller's turn: the reply's first segment
    // and its mark.
    carrier.send_audio(trailing, FRAME).await;
    let reply_played = |m: &[serde_json::Value]| {
        m.iter()
            .position(|m| m["event"] == "mark" && m["mark"]["name"] == "t1s0")
    };
    for _ in 0..60 {
        if reply_played(&carrier.messages()).is_some() {
            break;
        }
        carrier.send_audio(&silence(0.1), FRAME).await;
    }
    let messages = carrier.messages();
    let reply_mark = reply_played(&messages).expect("the agent replies to the caller's turn");
    assert!(
        messages[words_over..reply_mark]
            .iter()
            .any(|m| m["event"] == "media"),
        "the reply is played after the caller's words"
    );
    // Nothing more of the greeting (turn 0) after the clear: what came after is the reply.
    let marks_after_clear: Vec<_> = messages[clear..]
        .iter()
        .filter(|m| m["event"] == "mark")
        .map(|m| m["mark"]["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        marks_after_clear.iter().all(|name| name.starts_with("t1")),
        "{marks_after_clear:?}"
    );

    carrier.stop().await;
    let events = runtime.gateway.wait_for_call_end().await;
    let turns = transcript(&events);
    let (_, text, heard, interrupted) = &turns[0];
    assert!(interrupted);
    let heard = heard.clone().unwrap();
    assert!(heard.len() < text.len(), "heard {heard:?} of {text:?}");
    assert!(text.starts_with(&heard), "heard is a prefix: {heard:?}");
    // The audio after the caller's words was the agent's second turn: its reply to them.
    assert_eq!(turns[1].0, "Caller", "{turns:?}");
    assert_eq!(turns[2].0, "Agent", "{turns:?}");
    assert_eq!(turns[2].1, format!("You said: {}", turns[1].1));
}

#[tokio::test]
async fn calls_beyond_the_limit_are_refused_with_503() {
    let runtime = start_runtime(builtin_agent(), ProviderKeys::default(), |c| {
        c.max_concurrent_calls = 1
    })
    .await;
    let carrier = FakeCarrier::connect(runtime.addr, Dialect::Twilio).await;
    carrier.start(params()).await;
    carrier.wait_for("greeting", |m| !m.is_empty()).await;
    let refused =
        tokio_tungstenite::connect_async(format!("ws://{}/media/twilio", runtime.addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    // Draining refuses too, and ends the live call at the deadline.
    let drained = runtime.state.drain(Duration::from_millis(200)).await;
    assert!(!drained, "the live call had to be ended");
    let events = runtime.gateway.wait_for_call_end().await;
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::CallEnded {
            reason: EndReason::Shutdown,
            ..
        }
    )));
}

#[tokio::test]
async fn dtmf_becomes_a_caller_turn() {
    let mut agent = builtin_agent();
    agent.greeting = String::new();
    let runtime = start_runtime(agent, ProviderKeys::default(), |_| {}).await;
    let carrier = FakeCarrier::connect(runtime.addr, Dialect::Twilio).await;
    carrier.start(params()).await;
    for digit in ["4", "2", "#"] {
        carrier.send_json(json!({"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":digit}})).await;
    }
    let events = runtime
        .gateway
        .wait_for("agent reply", |e| transcript(e).len() >= 2)
        .await;
    let turns = transcript(&events);
    assert_eq!(turns[0].1, "[The caller pressed the keys: 42#]");
    assert_eq!(turns[1].1, "You said: [The caller pressed the keys: 42#]");
}

#[tokio::test]
async fn maximum_call_length_says_goodbye_and_hangs_up() {
    let mut agent = builtin_agent();
    agent.greeting = String::new();
    agent.max_call_seconds = 1;
    let runtime = start_runtime(agent, ProviderKeys::default(), |_| {}).await;
    let mut carrier = FakeCarrier::connect(runtime.addr, Dialect::Twilio).await;
    carrier.start(params()).await;
    // Keep the line alive with silence until the runtime hangs up.
    for _ in 0..20 {
        carrier
            .send_audio(&silence(0.2), Duration::from_millis(20))
            .await;
        if *carrier.closed.lock().unwrap() {
            break;
        }
    }
    let events = runtime.gateway.wait_for_call_end().await;
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::CallEnded {
            reason: EndReason::MaxDuration,
            ..
        }
    )));
    let turns = transcript(&events);
    assert_eq!(
        turns[0].1,
        switchboard_runtime::RuntimeConfig::default().goodbye_text
    );
    assert!(carrier.media_frames() > 20, "goodbye played");
}

#[tokio::test]
async fn a_silent_carrier_is_hung_up_after_the_media_timeout() {
    let mut agent = builtin_agent();
    agent.greeting = String::new();
    let runtime = start_runtime(agent, ProviderKeys::default(), |c| {
        c.media_timeout = Duration::from_millis(400)
    })
    .await;
    let carrier = FakeCarrier::connect(runtime.addr, Dialect::Telnyx).await;
    carrier.start(params()).await;
    let events = runtime.gateway.wait_for_call_end().await;
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::CallEnded {
            reason: EndReason::MediaTimeout,
            ..
        }
    )));
}

/// Whole call with the default turn-taking: a cough while the agent speaks does not cut it
/// off; the caller saying "stop" does, and the transcript keeps what had been heard.
/// The cough is the corpus generator's; "Stop." is `espeak-ng`'s (installed by `.ci/run`).
#[tokio::test]
async fn a_cough_does_not_interrupt_the_agent_and_stop_does() {
    use switchboard_runtime::eval::sounds;
    let stop = words("Stop.");
    let mut rng = fastrand::Rng::with_seed(11);
    // A loud double cough (about -8 dBFS peak) on a quiet line.
    let cough: Vec<i16> = loop {
        let cough = sounds::cough(&mut rng, 0.4);
        if cough.len() > 3000 {
            break cough.iter().map(|s| (s * 32768.0) as i16).collect();
        }
    };

    let mut agent = builtin_agent();
    agent.greeting = "Welcome to the example company. This greeting is deliberately long so that the caller has plenty of time to cough and then to interrupt it before it is over, which is exactly what this test does.".into();
    let runtime = start_runtime(agent, ProviderKeys::default(), |_| {}).await;
    let mut carrier = FakeCarrier::connect(runtime.addr, Dialect::Twilio).await;
    carrier.start(params()).await;
    carrier
        .wait_for("greeting audio", |m| {
            m.iter().filter(|m| m["event"] == "media").count() > 20
        })
        .await;
    let pace = Duration::from_millis(20);
    carrier.send_audio(&silence(0.4), pace).await;
    carrier.send_audio(&cough, pace).await;
    carrier.send_audio(&silence(0.8), pace).await;
    assert!(
        !carrier.messages().iter().any(|m| m["event"] == "clear"),
        "a cough interrupted the agent"
    );
    let before_stop = carrier.media_frames();

    carrier.send_audio(&stop, pace).await;
    carrier.send_audio(&silence(0.3), pace).await;
    carrier
        .wait_for("clear", |m| m.iter().any(|m| m["event"] == "clear"))
        .await;
    assert!(
        before_stop > 60,
        "the greeting kept playing through the cough"
    );

    carrier.stop().await;
    let events = runtime.gateway.wait_for_call_end().await;
    let turns = transcript(&events);
    let (role, text, heard, interrupted) = &turns[0];
    assert_eq!(role, "Agent");
    assert!(interrupted, "stopped by the caller");
    let heard = heard.clone().unwrap();
    assert!(!heard.is_empty() && heard.len() < text.len(), "{heard:?}");
    assert!(text.starts_with(&heard));
    assert!(
        events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::TranscriptTurn { .. }))
            .count()
            >= 2,
        "the caller's turn follows"
    );
}

/// Issue 14 item 5: the agent that answers is the one the dialled number names; another
/// number of the same tenant gets the default agent.
#[tokio::test]
async fn the_dialled_number_picks_the_agent_that_answers() {
    let named = |greeting: &str| AgentSpec {
        greeting: greeting.into(),
        ..builtin_agent()
    };
    let snapshot = switchboard_runtime::AgentSnapshot {
        agent: named("Hello from the front desk."),
        agents: [("sales".to_owned(), named("Hello from sales."))].into(),
        numbers: [("+15550101".to_owned(), "sales".to_owned())].into(),
        ..Default::default()
    };
    let runtime = start_runtime_with(snapshot, |_| {}).await;
    for (to, expected) in [
        ("+15550101", "Hello from sales."),
        ("+15550102", "Hello from the front desk."),
    ] {
        let carrier = FakeCarrier::connect(runtime.addr, Dialect::Twilio).await;
        let mut parameters = params();
        parameters["to"] = json!(to);
        parameters["callId"] = json!(format!("call-{to}"));
        carrier.start(parameters).await;
        carrier
            .wait_for("greeting", |m| {
                m.iter()
                    .any(|m| m["event"] == "mark" && m["mark"]["name"] == "t0s0")
            })
            .await;
        carrier.stop().await;
        let id = format!("call-{to}");
        let events = runtime
            .gateway
            .wait_for("this call ended", |e| {
                e.iter()
                    .any(|e| e.call_id == id && matches!(e.kind, EventKind::CallEnded { .. }))
            })
            .await;
        let said: Vec<String> = events
            .iter()
            .filter(|e| e.call_id == format!("call-{to}"))
            .filter_map(|e| match &e.kind {
                EventKind::TranscriptTurn { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            said.first().map(String::as_str),
            Some(expected),
            "{to}: {said:?}"
        );
    }
}
