//! Whole calls against local servers speaking OpenAI's, Deepgram's and ElevenLabs' documented
//! wire formats.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::*;
use serde_json::{Value, json};
use switchboard_crds::credentials::{CredentialEntry, Vendor, secret_key};
use switchboard_crds::events::{EndReason, EventKind};
use switchboard_crds::tenant::{
    AgentSpec, LlmProvider, LlmSpec, SttProvider, SttSpec, TtsProvider, TtsSpec,
};
use switchboard_runtime::ProviderKeys;

/// A stored credential of `vendor` labelled `label` (the vendor's default), as the gateway
/// indexes it.
fn credential(vendor: Vendor, label: &str, base_url: Option<String>) -> CredentialEntry {
    CredentialEntry {
        vendor,
        label: label.into(),
        is_default: true,
        key: secret_key(vendor, label).unwrap(),
        base_url,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ChatMode {
    /// A short streamed answer with usage.
    Answer,
    /// A long answer trickling out (to be interrupted).
    Slow,
    /// Never answers.
    Hang,
    /// Says goodbye and calls `end_call`.
    EndCall,
    /// Thanks the caller and records a survey answer.
    Survey,
}

#[derive(Clone)]
struct FakeProviders {
    mode: ChatMode,
    chat_requests: Arc<Mutex<Vec<Value>>>,
    chat_cancelled: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeProviders {
    fn new(mode: ChatMode) -> Self {
        Self {
            mode,
            chat_requests: Arc::default(),
            chat_cancelled: Arc::default(),
            seen: Arc::default(),
        }
    }

    fn saw(&self, what: String) {
        self.seen.lock().unwrap().push(what);
    }

    async fn start(&self) -> String {
        let app = axum::Router::new()
            .route("/v1/audio/transcriptions", post(transcriptions))
            .route("/v1/chat/completions", post(chat))
            .route("/v1/audio/speech", post(openai_speech))
            .route("/v1/listen", get(deepgram_listen))
            .route("/v1/speak", post(deepgram_speak))
            .route("/v1/text-to-speech/{voice}/stream", post(elevenlabs))
            .with_state(self.clone());
        format!("http://{}", serve(app).await)
    }
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn transcriptions(
    State(p): State<FakeProviders>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body);
    // Multipart with a WAV file and the model field (OpenAI's documented request).
    assert!(text.contains("name=\"model\""), "no model field");
    assert!(text.contains("whisper-1"));
    assert!(
        text.contains("RIFF") && text.contains("WAVEfmt"),
        "no WAV file"
    );
    p.saw(format!("stt {}", bearer(&headers)));
    axum::Json(json!({"text": "what are your opening hours"})).into_response()
}

fn sse(data: &Value) -> String {
    format!("data: {data}\n\n")
}

fn content(text: &str) -> Value {
    json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":text},"finish_reason":null}]})
}

/// Sets the flag when the response body is dropped before the end (the client went away).
struct DropGuard(Arc<AtomicBool>);
impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn chat(
    State(p): State<FakeProviders>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> Response {
    p.saw(format!("llm {}", bearer(&headers)));
    p.chat_requests.lock().unwrap().push(body.0.clone());
    let chunks: Vec<String> = match p.mode {
        ChatMode::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            vec![]
        }
        ChatMode::Answer => vec![
            sse(&content("We are open ")),
            sse(&content("from nine to five. ")),
            sse(&content("Anything else?")),
            sse(
                &json!({"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":12,"total_tokens":54}}),
            ),
            "data: [DONE]\n\n".into(),
        ],
        ChatMode::EndCall => vec![
            sse(&content("Goodbye, have a nice day!")),
            sse(
                &json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"end_call","arguments":""}}]}}]}),
            ),
            sse(
                &json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}),
            ),
            "data: [DONE]\n\n".into(),
        ],
        ChatMode::Survey => vec![
            sse(&content("Thank you, noted.")),
            sse(
                &json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"record_answer","arguments":"{\"field\":\"satisfaction\","}}]}}]}),
            ),
            sse(
                &json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"raw\":\"very happy\",\"value\":5}"}}]}}]}),
            ),
            "data: [DONE]\n\n".into(),
        ],
        ChatMode::Slow => (0..100)
            .map(|i| {
                sse(&content(&format!(
                    "This is sentence number {i} of a very long answer. "
                )))
            })
            .collect(),
    };
    let slow = p.mode == ChatMode::Slow;
    let flag = p.chat_cancelled.clone();
    let stream = async_stream(chunks, slow, flag);
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn async_stream(
    chunks: Vec<String>,
    slow: bool,
    flag: Arc<AtomicBool>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let guard = DropGuard(flag);
    futures::stream::unfold(
        (chunks.into_iter(), guard),
        move |(mut iter, guard)| async move {
            if slow {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            match iter.next() {
                Some(chunk) => Some((Ok(Bytes::from(chunk)), (iter, guard))),
                None => {
                    // Streamed to the end: not a cancellation.
                    std::mem::forget(guard);
                    None
                }
            }
        },
    )
}

/// PCM16LE of a 440 Hz tone, `ms_per_char` per character of `text`, at `rate`.
fn tone_pcm(text: &str, rate: u32, ms_per_char: u32) -> Vec<u8> {
    let samples = (text.len() as u32 * ms_per_char * rate / 1000) as usize;
    (0..samples)
        .flat_map(|n| {
            let v = (8000.0 * (2.0 * std::f32::consts::PI * 440.0 * n as f32 / rate as f32).sin())
                as i16;
            v.to_le_bytes()
        })
        .collect()
}

fn chunked(pcm: Vec<u8>) -> Response {
    // Odd chunk sizes on purpose: samples split across chunks must survive.
    let chunks: Vec<Result<Bytes, std::io::Error>> = pcm
        .chunks(999)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Response::builder()
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap()
}

async fn openai_speech(
    State(p): State<FakeProviders>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> Response {
    assert_eq!(body["response_format"], "pcm");
    let input = body["input"].as_str().unwrap_or_default().to_owned();
    p.saw(format!("tts-openai {} {input}", bearer(&headers)));
    chunked(tone_pcm(&input, 24_000, 30))
}

async fn deepgram_speak(
    State(p): State<FakeProviders>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
    body: axum::Json<Value>,
) -> Response {
    if bearer(&headers) != "Token dg-key" {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    assert_eq!(query.get("encoding").map(String::as_str), Some("linear16"));
    assert_eq!(query.get("sample_rate").map(String::as_str), Some("8000"));
    let text = body["text"].as_str().unwrap_or_default().to_owned();
    p.saw(format!("tts-aura {text}"));
    chunked(tone_pcm(&text, 8000, 30))
}

async fn elevenlabs(
    State(p): State<FakeProviders>,
    Path(voice): Path<String>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
    body: axum::Json<Value>,
) -> Response {
    let key = headers
        .get("xi-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if key != "el-key" {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    assert_eq!(
        query.get("output_format").map(String::as_str),
        Some("pcm_16000")
    );
    let text = body["text"].as_str().unwrap_or_default().to_owned();
    p.saw(format!(
        "tts-elevenlabs {voice} {} {text}",
        body["model_id"]
    ));
    chunked(tone_pcm(&text, 16_000, 30))
}

/// Deepgram's live endpoint as documented: interim `Results` while the caller speaks, a final
/// one with `speech_final: true` once `endpointing` ms of quiet have passed, `UtteranceEnd`
/// after `utterance_end_ms` without words, and a `from_finalize` answer to `Finalize`. Speech is
/// told from quiet by the level of each 20 ms message of 16 kHz audio.
async fn deepgram_listen(
    State(p): State<FakeProviders>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if bearer(&headers) != "Token dg-key" {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let number = |name: &str| query.get(name).and_then(|v| v.parse::<u64>().ok());
    let turn_events = query.get("interim_results").map(String::as_str) == Some("true");
    let endpointing_ms = number("endpointing").unwrap_or(10);
    let utterance_end_ms = number("utterance_end_ms");
    p.saw(format!(
        "deepgram query interim={turn_events} endpointing={endpointing_ms} utterance_end={utterance_end_ms:?}"
    ));
    upgrade.on_upgrade(move |mut socket| async move {
        let mut audio_bytes = 0usize;
        let mut speech_start: Option<f64> = None;
        let mut last_speech_end = 0.0f64;
        let mut quiet_ms = 0u64;
        let mut finalised = false;
        let mut utterance_ended = true;
        let results = |start: f64, end: f64, is_final: bool, speech_final: bool, text: &str| {
            json!({"type":"Results","channel_index":[0,1],"start":start,"duration":end - start,
                "is_final":is_final,"speech_final":speech_final,"from_finalize":false,
                "channel":{"alternatives":[{"transcript":text,"confidence":0.99,"words":[]}]}})
        };
        while let Some(Ok(message)) = socket.recv().await {
            match message {
                WsMessage::Binary(bytes) => {
                    let seconds = |bytes: usize| bytes as f64 / 32_000.0;
                    let samples: Vec<i16> = bytes
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect();
                    let rms = (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>()
                        / samples.len().max(1) as f64)
                        .sqrt();
                    let start = seconds(audio_bytes);
                    audio_bytes += bytes.len();
                    let end = seconds(audio_bytes);
                    let mut replies = Vec::new();
                    if rms > 300.0 {
                        quiet_ms = 0;
                        last_speech_end = end;
                        let first = *speech_start.get_or_insert(start);
                        finalised = false;
                        utterance_ended = false;
                        // An interim guess every 200 ms of speech.
                        if turn_events && ((end - first) * 1000.0) as u64 % 200 < 20 {
                            replies.push(results(first, end, false, false, "hello from"));
                        }
                    } else {
                        quiet_ms += ((end - start) * 1000.0).round() as u64;
                        if let Some(first) = speech_start
                            && !finalised
                            && turn_events
                            && quiet_ms >= endpointing_ms
                        {
                            finalised = true;
                            speech_start = None;
                            replies.push(results(first, last_speech_end, true, true, "hello from deepgram"));
                        }
                        if let Some(gap) = utterance_end_ms
                            && !utterance_ended
                            && finalised
                            && quiet_ms >= gap
                        {
                            utterance_ended = true;
                            replies.push(json!({"type":"UtteranceEnd","channel":[0,1],"last_word_end":last_speech_end}));
                        }
                    }
                    for reply in replies {
                        let _ = socket.send(WsMessage::text(reply.to_string())).await;
                    }
                }
                WsMessage::Text(text) if text.contains("Finalize") => {
                    p.saw(format!("deepgram audio {audio_bytes}"));
                    // Words not yet sent as final are flushed now.
                    let words = if finalised { "" } else { "hello from deepgram" };
                    finalised = true;
                    speech_start = None;
                    let flush = json!({"type":"Results","channel_index":[0,1],"duration":0.0,"start":0.0,
                        "is_final":true,"speech_final":false,"from_finalize":true,
                        "channel":{"alternatives":[{"transcript":words,"confidence":0.99,"words":[]}]}});
                    let _ = socket.send(WsMessage::text(flush.to_string())).await;
                }
                WsMessage::Text(text) if text.contains("CloseStream") => break,
                _ => {}
            }
        }
    })
}

async fn caller_turn(carrier: &mut FakeCarrier) {
    carrier.send_audio(&speech(1.0), Duration::ZERO).await;
    carrier.send_audio(&silence(0.5), Duration::ZERO).await;
}

fn agent_with(llm: LlmSpec, stt: SttSpec, tts: TtsSpec) -> AgentSpec {
    AgentSpec {
        greeting: String::new(),
        end_of_turn_silence_ms: 300,
        llm,
        stt,
        tts,
        ..AgentSpec::default()
    }
}

fn compatible(base: &str) -> (LlmSpec, SttSpec, TtsSpec) {
    (
        LlmSpec {
            credential: None,
            provider: LlmProvider::OpenaiCompatible,
            model: Some("llama".into()),
            base_url: Some(format!("{base}/v1")),
            temperature: Some("0.3".into()),
        },
        SttSpec {
            credential: None,
            provider: SttProvider::OpenaiCompatible,
            model: None,
            base_url: Some(format!("{base}/v1")),
        },
        TtsSpec {
            credential: None,
            provider: TtsProvider::OpenaiCompatible,
            model: Some("kokoro".into()),
            voice: Some("af_bella".into()),
            base_url: Some(format!("{base}/v1")),
        },
    )
}

#[tokio::test]
async fn openai_compatible_stt_llm_tts_over_telnyx() {
    let providers = FakeProviders::new(ChatMode::Answer);
    let base = providers.start().await;
    let (llm, stt, tts) = compatible(&base);
    // The tenant's openai-compatible credential is bound to this server; its OpenAI key must
    // never be sent here (issue 14 item 5).
    let keys = ProviderKeys::from_credentials([
        (
            credential(
                Vendor::OpenaiCompatible,
                "local",
                Some(format!("{base}/v1/")),
            ),
            "sk-test".to_owned(),
        ),
        (
            credential(Vendor::Openai, "main", None),
            "sk-openai".to_owned(),
        ),
    ]);
    let runtime = start_runtime(agent_with(llm, stt, tts), keys, |_| {}).await;
    let mut carrier = FakeCarrier::connect(runtime.addr, Dialect::Telnyx).await;
    carrier.start(params()).await;
    caller_turn(&mut carrier).await;
    carrier
        .wait_for("two spoken sentences", |m| {
            m.iter().filter(|m| m["event"] == "mark").count() >= 2
        })
        .await;
    assert!(carrier.media_frames() > 40);
    carrier.stop().await;
    let events = runtime.gateway.wait_for_call_end().await;
    let turns = transcript(&events);
    assert_eq!(turns[0].1, "what are your opening hours");
    assert_eq!(turns[1].1, "We are open from nine to five. Anything else?");
    assert_eq!(
        turns[1].2.as_deref(),
        Some("We are open from nine to five. Anything else?")
    );

    // The request followed the chat-completions contract.
    let request = providers.chat_requests.lock().unwrap()[0].clone();
    assert_eq!(request["model"], "llama");
    assert_eq!(request["stream"], true);
    assert_eq!(request["messages"][0]["role"], "system");
    assert_eq!(
        request["messages"][1],
        json!({"role":"user","content":"what are your opening hours"})
    );
    assert!(
        request["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "end_call")
    );
    // Sentence-level streaming: two TTS requests, one per sentence, with the tenant's key.
    let seen = providers.seen.lock().unwrap().clone();
    assert!(seen.contains(&"stt Bearer sk-test".to_owned()), "{seen:?}");
    assert!(seen.contains(&"llm Bearer sk-test".to_owned()));
    assert!(
        seen.contains(&"tts-openai Bearer sk-test We are open from nine to five.".to_owned()),
        "{seen:?}"
    );
    assert!(seen.contains(&"tts-openai Bearer sk-test Anything else?".to_owned()));
    assert!(!seen.iter().any(|s| s.contains("sk-openai")), "{seen:?}");

    let usage = events.iter().find_map(|e| match &e.kind {
        EventKind::Usage {
            llm_prompt_tokens,
            llm_completion_tokens,
            tts_characters,
            llm_provider,
            ..
        } => Some((
            *llm_prompt_tokens,
            *llm_completion_tokens,
            *tts_characters,
            llm_provider.clone(),
        )),
        _ => None,
    });
    // 30 + 14 characters: both sentences went to TTS.
    assert_eq!(usage, Some((42, 12, 44, "openai-compatible".into())));
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::TurnLatency {
            voice_to_voice_ms: Some(_),
            ..
        }
    )));
}

#[tokio::test]
async fn deepgram_streaming_stt_and_elevenlabs_tts() {
    let providers = FakeProviders::new(ChatMode::Answer);
    let base = providers.start().await;
    let agent = agent_with(
        LlmSpec::default(),
        SttSpec {
            credential: None,
            provider: SttProvider::Deepgram,
            model: None,
            base_url: Some(base.clone()),
        },
        TtsSpec {
            credential: None,
            provider: TtsProvider::Elevenlabs,
            model: None,
            voice: Some("voice-1".into()),
            base_url: Some(base.clone()),
        },
    );
    let keys = ProviderKeys::from_pairs([
        ("DEEPGRAM_API_KEY", "dg-key"),
        ("ELEVENLABS_API_KEY", "el-key"),
    ]);
    let runtime = start_runtime(agent, keys, |_| {}).await;
    let mut carrier = FakeCarrier::connect(runtime.addr, Dialect::Twilio).await;
    carrier.start(params()).await;
    caller_turn(&mut carrier).await;
    carrier
        .wait_for("reply audio", |m| m.iter().any(|m| m["event"] == "mark"))
        .await;
    carrier.stop().await;
    let events = runtime.gateway.wait_for_call_end().await;
    let turns = transcript(&events);
    assert_eq!(turns[0].1, "hello from deepgram");
    assert_eq!(turns[1].1, "You said: hello from deepgram");
    let seen = providers.seen.lock().unwrap().clone();
    // Deepgram received the streamed call audio at 16 kHz (1.5 s ≈ 48 000 bytes).
    let audio: usize = seen
        .iter()
        .find_map(|s| {
            s.strip_prefix("deepgram audio ")
                .map(|n| n.parse().unwrap())
        })
        .expect("deepgram finalize");
    assert!(audio > 40_000, "{audio}");
    assert!(
        seen.iter()
            .any(|s| s
                == "tts-elevenlabs voice-1 \"eleven_flash_v2_5\" You said: hello from deepgram"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn llm_timeout_is_answered_with_the_spoken_fallback() {
    let providers = FakeProviders::new(ChatMode::Hang);
    let base = providers.start().await;
    let (llm, stt, _) = compatible(&base);
    let tts = TtsSpec {
        credential: None,
        provider: TtsProvider::Deepgram,
        model: None,
        voice: None,
        base_url: Some(base.clone()),
    };
    let keys = ProviderKeys::from_pairs([("DEEPGRAM_API_KEY", "dg-key")]);
    let runtime = start_runtime(agent_with(llm, stt, tts), keys, |c| {
        c.provider_timeout = Duration::from_millis(500)
    })
    .await;
    let mut carrier = FakeCarrier::connect(runtime.addr, Dialect::Twilio).await;
    carrier.start(params()).await;
    caller_turn(&mut carrier).await;
    carrier
        .wait_for("fallback audio", |m| m.iter().any(|m| m["event"] == "mark"))
        .await;
    carrier.stop().await;
    let events = runtime.gateway.wait_for_call_end().await;
    let turns = transcript(&events);
    assert_eq!(
        turns[1].1,
        switchboard_runtime::RuntimeConfig::default().fallback_text
    );
    assert!(events.iter().any(|e| matches!(&e.kind, EventKind::ProviderError { stage, message, .. } if stage == "llm" && message.contains("timed out"))));
    let seen = providers.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|s| s.starts_with("tts-aura Sorry")),
        "fallback spoken by the tenant's voice: {seen:?}"
    );
}

#[tokio::test]
async fn barge_in_cancels_the_language_model_request_in_flight() {
    let providers = FakeProviders::new(ChatMode::Slow);
    let base = providers.start().await;
    let (llm, stt, tts) = compatible(&base);
    let runtime = start_runtime(agent_with(llm, stt, tts), ProviderKeys::default(), |_| {}).await;
    let mut carrier = FakeCarrier::connect(runtime.addr, Dialect::Twilio).await;
    carrier.start(params()).await;
    caller_turn(&mut carrier).await;
    carrier
        .wait_for("agent speaking", |m| {
            m.iter().filter(|m| m["event"] == "media").count() > 20
        })
        .await;
    assert!(!providers.chat_cancelled.load(Ordering::SeqCst));
    carrier
        .send_audio(&words("Wait, stop."), Duration::from_millis(20))
        .await;
    carrier
        .wait_for("clear", |m| {
            m.iter()
                .any(|m| m["event"] == "clear" && m["streamSid"] == "MZ1")
        })
        .await;
    for _ in 0..100 {
        if providers.chat_cancelled.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        providers.chat_cancelled.load(Ordering::SeqCst),
        "the streaming request was not cancelled"
    );
    carrier.stop().await;
    let events = runtime.gateway.wait_for_call_end().await;
    let agent_turn = transcript(&events)
        .into_iter()
        .find(|t| t.0 == "Agent")
        .unwrap();
    assert!(agent_turn.3, "interrupted");
}

#[tokio::test]
async fn end_call_tool_hangs_up_after_the_goodbye() {
    let providers = FakeProviders::new(ChatMode::EndCall);
    let base = providers.start().await;
    let (llm, stt, tts) = compatible(&base);
    let runtime = start_runtime(agent_with(llm, stt, tts), ProviderKeys::default(), |_| {}).await;
    let mut carrier = FakeCarrier::connect(runtime.addr, Dialect::Twilio).await;
    carrier.start(params()).await;
    caller_turn(&mut carrier).await;
    let events = runtime.gateway.wait_for_call_end().await;
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::CallEnded {
            reason: EndReason::AgentHangup,
            ..
        }
    )));
    assert_eq!(transcript(&events)[1].1, "Goodbye, have a nice day!");
    assert!(
        carrier.media_frames() > 20,
        "the goodbye was played before hanging up"
    );
    for _ in 0..50 {
        if *carrier.closed.lock().unwrap() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("socket not closed");
}

#[tokio::test]
async fn campaign_survey_answers_are_recorded_raw_and_structured() {
    use switchboard_crds::campaign::{AnswerType, CampaignAgent, SurveyQuestion};
    let providers = FakeProviders::new(ChatMode::Survey);
    let base = providers.start().await;
    let (llm, stt, tts) = compatible(&base);
    let mut campaigns = std::collections::BTreeMap::new();
    campaigns.insert(
        "spring".to_owned(),
        CampaignAgent {
            name: None,
            system_prompt: Some("You run a short customer survey.".into()),
            greeting: Some("Hi, this is a quick survey.".into()),
            questions: vec![SurveyQuestion {
                field: "satisfaction".into(),
                text: "From one to five, how happy are you with us?".into(),
                answer_type: AnswerType::Number,
                choices: vec![],
            }],
        },
    );
    let snapshot = switchboard_runtime::AgentSnapshot {
        agent: agent_with(llm, stt, tts),
        campaigns,
        ..switchboard_runtime::AgentSnapshot::default()
    };
    let runtime = start_runtime_with(snapshot, |_| {}).await;
    let mut carrier = FakeCarrier::connect(runtime.addr, Dialect::Twilio).await;
    let mut parameters = params();
    parameters["campaign"] = json!("spring");
    parameters["contact"] = json!("contact-7");
    carrier.start(parameters).await;
    carrier
        .wait_for("campaign greeting", |m| {
            m.iter()
                .any(|m| m["event"] == "mark" && m["mark"]["name"] == "t0s0")
        })
        .await;
    caller_turn(&mut carrier).await;
    let events = runtime
        .gateway
        .wait_for("survey answer", |e| {
            e.iter()
                .any(|e| matches!(e.kind, EventKind::SurveyAnswer { .. }))
        })
        .await;
    let answer = events.iter().find_map(|e| match &e.kind {
        EventKind::SurveyAnswer { field, raw, value } => {
            Some((field.clone(), raw.clone(), value.clone()))
        }
        _ => None,
    });
    assert_eq!(
        answer,
        Some(("satisfaction".into(), "very happy".into(), json!(5)))
    );
    assert!(
        matches!(&events[0].kind, EventKind::CallStarted { campaign: Some(c), contact: Some(k), .. } if c == "spring" && k == "contact-7")
    );
    // The campaign's greeting was used, and the model was given the script and the tool.
    assert_eq!(transcript(&events)[0].1, "Hi, this is a quick survey.");
    let request = providers.chat_requests.lock().unwrap()[0].clone();
    let system = request["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.starts_with("You run a short customer survey."));
    assert!(system.contains("[satisfaction, Number] From one to five"));
    let record = request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "record_answer")
        .cloned()
        .unwrap();
    assert_eq!(
        record["function"]["parameters"]["properties"]["field"]["enum"],
        json!(["satisfaction"])
    );
}

#[tokio::test]
async fn deepgram_endpointing_ends_a_turn_before_the_vad_silence_would() {
    let providers = FakeProviders::new(ChatMode::Answer);
    let base = providers.start().await;
    let mut agent = agent_with(
        LlmSpec::default(),
        SttSpec {
            credential: None,
            provider: SttProvider::Deepgram,
            model: None,
            base_url: Some(base.clone()),
        },
        TtsSpec::default(),
    );
    // The VAD alone would wait two seconds of silence.
    agent.end_of_turn_silence_ms = 2000;
    let keys = ProviderKeys::from_pairs([("DEEPGRAM_API_KEY", "dg-key")]);
    let runtime = start_runtime(agent, keys, |_| {}).await;
    let mut carrier = FakeCarrier::connect(runtime.addr, Dialect::Twilio).await;
    carrier.start(params()).await;
    let pace = Duration::from_millis(20);
    carrier.send_audio(&speech(1.0), pace).await;
    // 1.2 s of quiet line: Deepgram marks speech final after its endpointing (300 ms by
    // default), the VAD agrees, and the agent answers well before the 2 s silence.
    carrier.send_audio(&silence(1.2), pace).await;
    assert!(
        carrier.media_frames() > 0,
        "no reply within 1.2 s of the caller stopping"
    );
    carrier.stop().await;
    let events = runtime.gateway.wait_for_call_end().await;
    let turns = transcript(&events);
    assert_eq!(turns[0].1, "hello from deepgram");
    assert_eq!(turns[1].1, "You said: hello from deepgram");
    let seen = providers.seen.lock().unwrap().clone();
    assert!(
        seen.contains(
            &"deepgram query interim=true endpointing=300 utterance_end=Some(1000)".to_owned()
        ),
        "{seen:?}"
    );
}
