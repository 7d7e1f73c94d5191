//! Deepgram live transcription: one WebSocket per call, audio streamed as it arrives, and a
//! `Finalize` at each end of turn to flush the words of that turn.
//!
//! Wire format (developers.deepgram.com, "Live audio"): connect to
//! `/v1/listen?encoding=linear16&sample_rate=16000&…` with `Authorization: Token <key>`; send
//! binary audio; receive `{"type":"Results","start":…,"duration":…,"is_final":…,
//! "speech_final":…,"from_finalize":…,"channel":{"alternatives":[{"transcript":…}]}}`; send
//! `{"type":"Finalize"}` and `{"type":"CloseStream"}` as text.
//!
//! For the end-of-turn decision the stream also asks for `interim_results=true`,
//! `endpointing=<ms>` (Results carry `speech_final: true` once Deepgram hears that much silence
//! after speech) and `utterance_end_ms=1000` (`{"type":"UtteranceEnd","last_word_end":…}` after
//! a second without words, whatever the noise), and forwards them as [`SttEvent`]s.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use super::ProviderError;
use super::stt::session::{StreamingOptions, SttEvent, SttSession, Transcript};
use crate::config::Secret;

/// Audio frames buffered towards Deepgram before new ones are dropped (2 s).
const AUDIO_QUEUE: usize = 100;
/// Turn events buffered towards the call before new ones are dropped.
const EVENT_QUEUE: usize = 64;
/// Deepgram's smallest utterance-end gap.
const UTTERANCE_END_MS: u32 = 1000;

/// What the stream is opened for.
#[derive(Clone, Copy, Debug)]
pub struct Settings<'a> {
    /// Model name.
    pub model: &'a str,
    /// BCP-47 language.
    pub language: &'a str,
    /// Turn events.
    pub options: StreamingOptions,
}

enum Command {
    Audio(Vec<u8>),
    Finalize(oneshot::Sender<String>),
}

/// The call's side of a Deepgram stream. Dropping it closes the stream.
#[derive(Debug)]
pub struct DeepgramStream {
    tx: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl DeepgramStream {
    /// Connects and starts the stream task; with turn events asked for, they arrive on the
    /// returned receiver.
    pub async fn connect(
        base: &str,
        key: &Secret,
        settings: Settings<'_>,
        timeout: Duration,
    ) -> Result<(Self, Option<mpsc::Receiver<SttEvent>>), ProviderError> {
        let Settings {
            model,
            language,
            options,
        } = settings;
        let turn_parameters = if options.turn_events {
            format!(
                "interim_results=true&endpointing={}&utterance_end_ms={UTTERANCE_END_MS}",
                options.endpointing_ms.max(10)
            )
        } else {
            "interim_results=false".to_owned()
        };
        let url = format!(
            "{base}/v1/listen?encoding=linear16&sample_rate=16000&channels=1&model={model}&language={language}&punctuate=true&{turn_parameters}"
        );
        let mut request = url
            .into_client_request()
            .map_err(|e| ProviderError::Protocol(e.to_string()))?;
        let auth = format!("Token {}", key.expose())
            .parse()
            .map_err(|_| ProviderError::Protocol("key is not a valid header".into()))?;
        request.headers_mut().insert("authorization", auth);
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(small_buffers()),
            true,
            Some(tls_connector()),
        );
        let (socket, _) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| ProviderError::Timeout)?
            .map_err(|e| ProviderError::Transport(e.to_string()))?;
        let (tx, rx) = mpsc::channel(AUDIO_QUEUE);
        let (events_tx, events_rx) = if options.turn_events {
            let (tx, rx) = mpsc::channel(EVENT_QUEUE);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        tokio::spawn(run(socket, rx, events_tx));
        Ok((Self { tx }, events_rx))
    }

    /// Queues 16 kHz little-endian audio; never waits (drops when Deepgram falls behind).
    pub fn send_pcm16le(&self, pcm16le: Vec<u8>) -> bool {
        self.tx.try_send(Command::Audio(pcm16le)).is_ok()
    }

    /// Flushes the turn and returns its final transcript.
    pub async fn finalize(&self, timeout: Duration) -> Result<String, ProviderError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Finalize(reply))
            .await
            .map_err(|_| ProviderError::Transport("Deepgram stream closed".into()))?;
        match tokio::time::timeout(timeout, answer).await {
            Err(_) => Err(ProviderError::Timeout),
            Ok(Err(_)) => Err(ProviderError::Transport("Deepgram stream closed".into())),
            Ok(Ok(text)) => Ok(text),
        }
    }
}

impl SttSession for DeepgramStream {
    fn name(&self) -> &'static str {
        "deepgram"
    }

    fn is_streaming(&self) -> bool {
        true
    }

    fn send_audio(&self, pcm_16k: &[i16]) -> bool {
        let bytes = pcm_16k.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.send_pcm16le(bytes)
    }

    fn transcribe_turn<'a>(
        &'a self,
        _audio_8k: &'a [i16],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Transcript, ProviderError>> {
        Box::pin(async move {
            let text = self.finalize(timeout).await?;
            // The stream is billed as it is sent (see `send_audio`), not per turn.
            Ok(Transcript {
                text,
                billed_seconds: 0.0,
            })
        })
    }
}

/// Client WebSocket buffers sized for small audio messages, not tungstenite's 128 KiB default.
pub fn small_buffers() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
}

/// rustls with the `ring` provider and the webpki roots, explicitly: the workspace may also
/// compile aws-lc-rs, and then rustls cannot pick a default provider by itself.
pub fn tls_connector() -> tokio_tungstenite::Connector {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
            builder.with_root_certificates(roots).with_no_client_auth(),
        )),
        Err(_) => tokio_tungstenite::Connector::Plain,
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn run(
    socket: Socket,
    mut commands: mpsc::Receiver<Command>,
    events: Option<mpsc::Sender<SttEvent>>,
) {
    let (mut sink, mut stream) = socket.split();
    let mut transcript = String::new();
    let mut waiting: Option<oneshot::Sender<String>> = None;
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Audio(bytes)) => {
                    if sink.send(Message::binary(bytes)).await.is_err() { break; }
                }
                Some(Command::Finalize(reply)) => {
                    if sink.send(Message::text(r#"{"type":"Finalize"}"#)).await.is_err() { break; }
                    waiting = Some(reply);
                }
                None => {
                    let _ = sink.send(Message::text(r#"{"type":"CloseStream"}"#)).await;
                    let _ = sink.close().await;
                    break;
                }
            },
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let Ok(message) = serde_json::from_str::<Incoming>(&text) else { continue };
                    if let Some(event) = turn_event(&message) && let Some(events) = &events {
                        // Never wait for the call: a late event is worth less than the audio.
                        let _ = events.try_send(event);
                    }
                    let Incoming::Results(result) = message else { continue };
                    if result.is_final {
                        let words = result.channel.alternatives.first().map(|a| a.transcript.trim()).unwrap_or("");
                        if !words.is_empty() {
                            if !transcript.is_empty() { transcript.push(' '); }
                            transcript.push_str(words);
                        }
                    }
                    if result.from_finalize && let Some(reply) = waiting.take() {
                        let _ = reply.send(std::mem::take(&mut transcript));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => { tracing::warn!(%error, "Deepgram stream failed"); break; }
                None => break,
            },
        }
    }
}

/// The turn event a message carries, if any (finalize flushes are answers, not events).
fn turn_event(message: &Incoming) -> Option<SttEvent> {
    let seconds_to_ms = |s: f64| (s.max(0.0) * 1000.0).round() as u64;
    match message {
        Incoming::Results(message) if !message.from_finalize => {
            let text = message
                .channel
                .alternatives
                .first()
                .map(|a| a.transcript.trim().to_owned())
                .unwrap_or_default();
            if text.is_empty() && !message.speech_final {
                return None;
            }
            Some(SttEvent::Words {
                text,
                is_final: message.is_final,
                speech_final: message.speech_final,
                end_ms: seconds_to_ms(message.start + message.duration),
            })
        }
        Incoming::UtteranceEnd { last_word_end } => Some(SttEvent::UtteranceEnd {
            last_word_end_ms: seconds_to_ms(*last_word_end),
        }),
        _ => None,
    }
}

/// Messages from Deepgram, by their `type`.
#[derive(serde::Deserialize)]
#[serde(tag = "type")]
enum Incoming {
    Results(Results),
    UtteranceEnd {
        #[serde(default)]
        last_word_end: f64,
    },
    /// `Metadata`, `SpeechStarted` and anything newer.
    #[serde(other)]
    Other,
}

/// A `Results` message.
#[derive(serde::Deserialize)]
struct Results {
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    speech_final: bool,
    #[serde(default)]
    from_finalize: bool,
    #[serde(default)]
    start: f64,
    #[serde(default)]
    duration: f64,
    #[serde(default)]
    channel: Channel,
}

#[derive(serde::Deserialize, Default)]
struct Channel {
    #[serde(default)]
    alternatives: Vec<Alternative>,
}

#[derive(serde::Deserialize)]
struct Alternative {
    #[serde(default)]
    transcript: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Option<SttEvent> {
        turn_event(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn results_and_utterance_end_become_turn_events() {
        assert_eq!(
            event(
                r#"{"type":"Results","channel_index":[0,1],"duration":1.2,"start":3.5,"is_final":true,"speech_final":true,"channel":{"alternatives":[{"transcript":"book a table and","confidence":0.9}]}}"#
            ),
            Some(SttEvent::Words {
                text: "book a table and".into(),
                is_final: true,
                speech_final: true,
                end_ms: 4700,
            })
        );
        assert_eq!(
            event(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.1}"#),
            Some(SttEvent::UtteranceEnd {
                last_word_end_ms: 2100
            })
        );
        // Empty interims, finalize answers and metadata are not events.
        assert_eq!(
            event(
                r#"{"type":"Results","is_final":false,"channel":{"alternatives":[{"transcript":""}]}}"#
            ),
            None
        );
        assert_eq!(
            event(
                r#"{"type":"Results","is_final":true,"from_finalize":true,"channel":{"alternatives":[{"transcript":"hi"}]}}"#
            ),
            None
        );
        assert_eq!(event(r#"{"type":"Metadata","request_id":"x"}"#), None);
    }
}
