//! Text-to-speech: the builtin offline synthesiser, OpenAI-compatible `/audio/speech`
//! (also Kokoro-style servers), Deepgram Aura and ElevenLabs streaming. All stream raw PCM,
//! which is resampled to 8 kHz by the caller.

use std::f32::consts::PI;
use std::time::Duration;

use serde_json::json;
use switchboard_crds::tenant::{TtsProvider, TtsSpec};

use super::{ProviderError, check_status, next_chunk, pcm16le_to_samples};
use crate::config::{ProviderKeys, Secret};

const OPENAI_BASE: &str = "https://api.openai.com/v1";
const DEEPGRAM_BASE: &str = "https://api.deepgram.com";
const ELEVENLABS_BASE: &str = "https://api.elevenlabs.io";
/// Rate of the builtin synthesiser.
pub const BUILTIN_RATE: u32 = 8000;

/// A configured text-to-speech provider.
#[derive(Clone, Debug)]
pub enum Tts {
    /// Offline: a vowel-like buzz per word, length proportional to the text.
    Builtin,
    /// A provider reached over HTTP.
    Http(HttpTts),
}

/// An HTTP text-to-speech provider.
#[derive(Clone, Debug)]
pub struct HttpTts {
    kind: TtsProvider,
    http: reqwest::Client,
    base: String,
    key: Result<Secret, &'static str>,
    model: String,
    voice: String,
}

impl Tts {
    /// The provider described by `spec`.
    pub fn from_spec(spec: &TtsSpec, keys: &ProviderKeys, http: &reqwest::Client) -> Self {
        let (base, key_name, model, voice) = match spec.provider {
            TtsProvider::Builtin => return Tts::Builtin,
            TtsProvider::Openai | TtsProvider::OpenaiCompatible => {
                (OPENAI_BASE, "OPENAI_API_KEY", "gpt-4o-mini-tts", "alloy")
            }
            TtsProvider::Deepgram => (DEEPGRAM_BASE, "DEEPGRAM_API_KEY", "aura-2-thalia-en", ""),
            TtsProvider::Elevenlabs => (
                ELEVENLABS_BASE,
                "ELEVENLABS_API_KEY",
                "eleven_flash_v2_5",
                "21m00Tcm4TlvDq8ikWAM",
            ),
        };
        let Some(vendor) = spec.provider.vendor() else {
            return Tts::Builtin;
        };
        let compatible = spec.provider == TtsProvider::OpenaiCompatible;
        let auth = super::stage_auth(
            keys,
            vendor,
            spec.credential.as_deref(),
            spec.base_url.as_deref(),
            base,
            !compatible,
            if compatible {
                "openai-compatible credential"
            } else {
                key_name
            },
        );
        Tts::Http(HttpTts {
            kind: spec.provider,
            http: http.clone(),
            base: auth.base.trim_end_matches('/').to_owned(),
            key: auth.key,
            model: spec.model.clone().unwrap_or_else(|| model.into()),
            voice: spec.voice.clone().unwrap_or_else(|| voice.into()),
        })
    }

    /// Provider name for events and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Tts::Builtin => "builtin",
            Tts::Http(http) => match http.kind {
                TtsProvider::Builtin => "builtin",
                TtsProvider::Openai => "openai",
                TtsProvider::OpenaiCompatible => "openai-compatible",
                TtsProvider::Deepgram => "deepgram",
                TtsProvider::Elevenlabs => "elevenlabs",
            },
        }
    }

    /// Sample rate of the PCM this provider streams.
    pub fn sample_rate(&self) -> u32 {
        match self {
            Tts::Builtin => BUILTIN_RATE,
            Tts::Http(http) => match http.kind {
                // OpenAI's `pcm` format is fixed at 24 kHz.
                TtsProvider::Openai | TtsProvider::OpenaiCompatible => 24_000,
                // Asked for telephone rate directly: nothing to resample.
                TtsProvider::Deepgram => 8000,
                TtsProvider::Elevenlabs => 16_000,
                TtsProvider::Builtin => BUILTIN_RATE,
            },
        }
    }

    /// Synthesises `text`, handing PCM at [`Tts::sample_rate`] to `on_audio` as it streams.
    ///
    /// `timeout` bounds the wait for the response and between chunks. Retried once on a
    /// transient failure before any audio arrived.
    pub async fn synthesize(
        &self,
        text: &str,
        timeout: Duration,
        on_audio: &mut (dyn FnMut(&[i16]) + Send),
    ) -> Result<(), ProviderError> {
        match self {
            Tts::Builtin => {
                on_audio(&builtin_voice(text));
                Ok(())
            }
            Tts::Http(http) => {
                let mut produced = false;
                for attempt in 1..=2 {
                    let mut guard = |pcm: &[i16]| {
                        produced = true;
                        on_audio(pcm);
                    };
                    match http.stream_once(text, timeout, &mut guard).await {
                        Err(error) if error.is_retryable() && !produced && attempt < 2 => {}
                        other => return other,
                    }
                }
                Ok(())
            }
        }
    }
}

impl HttpTts {
    fn request(&self, text: &str) -> Result<reqwest::RequestBuilder, ProviderError> {
        let key = self
            .key
            .as_ref()
            .map_err(|name| ProviderError::MissingKey(name))?;
        let request = match self.kind {
            TtsProvider::Openai | TtsProvider::OpenaiCompatible | TtsProvider::Builtin => {
                let request = self
                    .http
                    .post(format!("{}/audio/speech", self.base))
                    .json(&json!({"model": self.model, "input": text, "voice": self.voice, "response_format": "pcm"}));
                if key.expose().is_empty() {
                    request
                } else {
                    request.bearer_auth(key.expose())
                }
            }
            TtsProvider::Deepgram => self
                .http
                .post(format!("{}/v1/speak", self.base))
                .query(&[
                    ("model", self.model.as_str()),
                    ("encoding", "linear16"),
                    ("sample_rate", "8000"),
                    ("container", "none"),
                ])
                .header("authorization", format!("Token {}", key.expose()))
                .json(&json!({"text": text})),
            TtsProvider::Elevenlabs => self
                .http
                .post(format!(
                    "{}/v1/text-to-speech/{}/stream",
                    self.base, self.voice
                ))
                .query(&[("output_format", "pcm_16000")])
                .header("xi-api-key", key.expose())
                .json(&json!({"text": text, "model_id": self.model})),
        };
        Ok(request)
    }

    async fn stream_once(
        &self,
        text: &str,
        timeout: Duration,
        on_audio: &mut (dyn FnMut(&[i16]) + Send),
    ) -> Result<(), ProviderError> {
        let request = self.request(text)?;
        let response = tokio::time::timeout(timeout, request.send())
            .await
            .map_err(|_| ProviderError::Timeout)??;
        let response = check_status(response).await?;
        let mut stream = Box::pin(response.bytes_stream());
        let mut carry = None;
        let mut samples = Vec::new();
        while let Some(chunk) = next_chunk(&mut stream, timeout).await? {
            samples.clear();
            pcm16le_to_samples(&chunk, &mut carry, &mut samples);
            if !samples.is_empty() {
                on_audio(&samples);
            }
        }
        Ok(())
    }
}

/// The builtin voice: per word, a short vowel-like buzz (120 Hz harmonics through two
/// formants that change with the word), separated by short gaps; ~65 ms per character.
pub fn builtin_voice(text: &str) -> Vec<i16> {
    let rate = BUILTIN_RATE as f32;
    let mut out = Vec::new();
    for (index, word) in text.split_whitespace().enumerate() {
        let length = (word.chars().count().max(1) as f32 * 0.065 * rate) as usize;
        let first = 500.0 + 80.0 * (index % 5) as f32;
        let second = 1100.0 + 150.0 * (word.len() % 4) as f32;
        for n in 0..length {
            let t = n as f32 / rate;
            let envelope = (PI * n as f32 / length as f32).sin();
            let mut v = 0.0;
            for harmonic in 1..=20 {
                let f = 120.0 * harmonic as f32;
                let gain = 1.0 / (1.0 + ((f - first) / 120.0).powi(2))
                    + 0.6 / (1.0 + ((f - second) / 160.0).powi(2));
                v += gain * (2.0 * PI * f * t).sin();
            }
            out.push((v * envelope * 3000.0).clamp(-32767.0, 32767.0) as i16);
        }
        out.extend(std::iter::repeat_n(0, (0.06 * rate) as usize));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_voice_length_grows_with_text_and_is_audible() {
        let short = builtin_voice("Hi");
        let long = builtin_voice("Hello there, how can I help you today");
        assert!(long.len() > short.len() * 5);
        assert!(crate::vad::level_dbfs(&long) > -30.0);
        assert!(builtin_voice("").is_empty());
    }
}
