//! Speech-to-text: builtin (voice activity only), OpenAI-compatible transcriptions (one request
//! per caller turn) and Deepgram streaming (one WebSocket per call, see [`super::deepgram`]).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use switchboard_crds::credentials::Vendor;
use switchboard_crds::tenant::{SttProvider, SttSpec};

use super::{ProviderError, check_status, require_key};
use crate::config::{ProviderKeys, Secret};
use crate::resample::Resampler;

pub mod session;

pub use session::{StreamingOptions, SttEvent, SttSession, Transcript};

const OPENAI_BASE: &str = "https://api.openai.com/v1";
const DEEPGRAM_BASE: &str = "https://api.deepgram.com";
/// Rate sent to transcription providers: what their models are trained on.
pub const STT_RATE: u32 = 16_000;

/// A configured speech-to-text provider.
#[derive(Clone, Debug)]
pub enum Stt {
    /// Offline: every utterance becomes `[utterance 1.2s]`.
    Builtin,
    /// `POST {base}/audio/transcriptions` with a WAV file.
    OpenAi {
        /// Shared client.
        http: reqwest::Client,
        /// Base URL ending in `/v1`.
        base: String,
        /// Bearer key (optional for self-hosted servers).
        key: Option<Secret>,
        /// Model name.
        model: String,
        /// ISO-639-1 language hint.
        language: String,
    },
    /// Deepgram live transcription over WebSocket.
    Deepgram {
        /// `ws(s)://` base URL.
        base: String,
        /// `Token` key.
        key: Result<Secret, &'static str>,
        /// Model name.
        model: String,
        /// BCP-47 language.
        language: String,
    },
}

impl Stt {
    /// The provider described by `spec`.
    pub fn from_spec(
        spec: &SttSpec,
        language: &str,
        keys: &ProviderKeys,
        http: &reqwest::Client,
    ) -> Self {
        let iso_language = language.split('-').next().unwrap_or("en").to_owned();
        match spec.provider {
            SttProvider::Builtin => Stt::Builtin,
            SttProvider::Openai | SttProvider::OpenaiCompatible => {
                let compatible = spec.provider == SttProvider::OpenaiCompatible;
                let auth = super::stage_auth(
                    keys,
                    if compatible {
                        Vendor::OpenaiCompatible
                    } else {
                        Vendor::Openai
                    },
                    spec.credential.as_deref(),
                    spec.base_url.as_deref(),
                    OPENAI_BASE,
                    false,
                    "OPENAI_API_KEY",
                );
                Stt::OpenAi {
                    http: http.clone(),
                    base: auth.base.trim_end_matches('/').to_owned(),
                    key: auth.key.ok().filter(|k| !k.expose().is_empty()),
                    model: spec.model.clone().unwrap_or_else(|| "whisper-1".into()),
                    language: iso_language,
                }
            }
            SttProvider::Deepgram => {
                let auth = super::stage_auth(
                    keys,
                    Vendor::Deepgram,
                    spec.credential.as_deref(),
                    spec.base_url.as_deref(),
                    DEEPGRAM_BASE,
                    true,
                    "DEEPGRAM_API_KEY",
                );
                Stt::Deepgram {
                    base: super::websocket_base(auth.base.trim_end_matches('/')),
                    key: auth.key,
                    model: spec.model.clone().unwrap_or_else(|| "nova-3".into()),
                    language: language.to_owned(),
                }
            }
        }
    }

    /// Provider name for events and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Stt::Builtin => "builtin",
            Stt::OpenAi { .. } => "openai",
            Stt::Deepgram { .. } => "deepgram",
        }
    }

    /// True for providers fed continuously over a stream rather than once per turn.
    pub fn is_streaming(&self) -> bool {
        matches!(self, Stt::Deepgram { .. })
    }

    /// Transcribes one caller turn (8 kHz samples) with a per-turn provider.
    pub async fn transcribe(
        &self,
        audio_8k: &[i16],
        timeout: Duration,
    ) -> Result<String, ProviderError> {
        match self {
            Stt::Builtin => Ok(builtin_transcript(audio_8k.len())),
            Stt::OpenAi {
                http,
                base,
                key,
                model,
                language,
            } => {
                let wav = wav_16k(audio_8k);
                let mut last = ProviderError::Timeout;
                // Transcription has no side effects: one retry on transient failures.
                for _ in 0..2 {
                    let attempt =
                        openai_transcribe(http, base, key.as_ref(), model, language, &wav);
                    match tokio::time::timeout(timeout, attempt).await {
                        Ok(Ok(text)) => return Ok(text),
                        Ok(Err(error)) if error.is_retryable() => last = error,
                        Ok(Err(error)) => return Err(error),
                        Err(_) => return Err(ProviderError::Timeout),
                    }
                }
                Err(last)
            }
            Stt::Deepgram { .. } => Err(ProviderError::Protocol(
                "Deepgram transcribes over its stream".into(),
            )),
        }
    }
}

/// The builtin placeholder for an utterance of `samples` at 8 kHz.
pub fn builtin_transcript(samples: usize) -> String {
    format!("[utterance {:.1}s]", samples as f64 / 8000.0)
}

async fn openai_transcribe(
    http: &reqwest::Client,
    base: &str,
    key: Option<&Secret>,
    model: &str,
    language: &str,
    wav: &[u8],
) -> Result<String, ProviderError> {
    let file = reqwest::multipart::Part::bytes(wav.to_vec())
        .file_name("turn.wav")
        .mime_str("audio/wav")
        .map_err(|e| ProviderError::Protocol(e.to_string()))?;
    let form = reqwest::multipart::Form::new()
        .part("file", file)
        .text("model", model.to_owned())
        .text("language", language.to_owned())
        .text("response_format", "json");
    let mut request = http
        .post(format!("{base}/audio/transcriptions"))
        .multipart(form);
    if let Some(key) = key {
        request = request.bearer_auth(key.expose());
    }
    let response = check_status(request.send().await?).await?;
    #[derive(serde::Deserialize)]
    struct Transcription {
        text: String,
    }
    let body: Transcription = response
        .json()
        .await
        .map_err(|e| ProviderError::Protocol(e.to_string()))?;
    Ok(body.text.trim().to_owned())
}

/// A mono 16-bit WAV at 16 kHz of 8 kHz input.
pub fn wav_16k(audio_8k: &[i16]) -> Vec<u8> {
    let samples = Resampler::process_all(8000, STT_RATE, audio_8k);
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&STT_RATE.to_le_bytes());
    wav.extend_from_slice(&(STT_RATE * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    wav
}

/// Key required by Deepgram, for callers that open the stream.
pub(crate) fn deepgram_key(key: &Result<Secret, &'static str>) -> Result<Secret, ProviderError> {
    require_key(key.as_ref().ok(), "DEEPGRAM_API_KEY")
}

/// A call's STT session, and its events when it streams them.
#[derive(Debug)]
pub struct OpenedStt {
    /// The session.
    pub session: Arc<dyn SttSession>,
    /// Turn events of a streaming session opened with [`StreamingOptions::turn_events`].
    pub events: Option<tokio::sync::mpsc::Receiver<SttEvent>>,
    /// Why a streaming session could not be opened (it then fails at the first turn).
    pub error: Option<ProviderError>,
}

/// A provider asked once per turn (builtin, OpenAI-compatible).
#[derive(Debug)]
pub struct PerTurnStt(pub Stt);

impl SttSession for PerTurnStt {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn transcribe_turn<'a>(
        &'a self,
        audio_8k: &'a [i16],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Transcript, ProviderError>> {
        Box::pin(async move {
            let text = self.0.transcribe(audio_8k, timeout).await?;
            Ok(Transcript {
                text,
                billed_seconds: audio_8k.len() as f64 / 8000.0,
            })
        })
    }
}

/// A streaming session that could not be opened: every turn reports why.
#[derive(Debug)]
pub struct UnavailableStt {
    /// Provider name.
    pub name: &'static str,
    /// Why the session is not there.
    pub reason: String,
}

impl SttSession for UnavailableStt {
    fn name(&self) -> &'static str {
        self.name
    }

    fn transcribe_turn<'a>(
        &'a self,
        _audio_8k: &'a [i16],
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<Transcript, ProviderError>> {
        let error = ProviderError::Transport(self.reason.clone());
        Box::pin(async move { Err(error) })
    }
}

/// Opens the call's session: connects streaming providers now (a failure surfaces at the
/// first turn, as a provider error the caller hears the fallback for).
pub async fn open_session(stt: &Stt, options: StreamingOptions, timeout: Duration) -> OpenedStt {
    let Stt::Deepgram {
        base,
        key,
        model,
        language,
    } = stt
    else {
        return OpenedStt {
            session: Arc::new(PerTurnStt(stt.clone())),
            events: None,
            error: None,
        };
    };
    let connected = match deepgram_key(key) {
        Ok(key) => {
            let settings = super::deepgram::Settings {
                model,
                language,
                options,
            };
            super::deepgram::DeepgramStream::connect(base, &key, settings, timeout).await
        }
        Err(error) => Err(error),
    };
    match connected {
        Ok((stream, events)) => OpenedStt {
            session: Arc::new(stream),
            events,
            error: None,
        },
        Err(error) => OpenedStt {
            session: Arc::new(UnavailableStt {
                name: stt.name(),
                reason: format!("Deepgram stream not open: {error}"),
            }),
            events: None,
            error: Some(error),
        },
    }
}
