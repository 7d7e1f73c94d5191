//! One agent reply, run as its own task so barge-in can cancel it: transcript of the caller's
//! turn → streamed language-model reply → sentence-by-sentence speech, reported to the call as
//! [`ReplyEvent`]s. Cancelling the task drops the in-flight HTTP requests, which closes their
//! connections: the providers stop generating.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::providers::llm::SentenceSplitter;
use crate::providers::{ChatMessage, LlmOutcome, ProviderError, Providers, SttSession, Tts};
use crate::resample::Resampler;

/// What the reply answers.
#[derive(Debug)]
pub(crate) enum ReplyInput {
    /// A caller turn of 8 kHz audio, to transcribe first.
    Utterance(Arc<Vec<i16>>),
    /// Caller input that is already text (DTMF).
    Text(String),
    /// Fixed words to speak (greeting, goodbye), no language model.
    Say(String),
}

/// Everything a reply task needs.
pub(crate) struct ReplyJob {
    pub turn: u32,
    pub input: ReplyInput,
    pub history: Vec<ChatMessage>,
    pub tools: Arc<Vec<serde_json::Value>>,
    pub providers: Arc<Providers>,
    pub stt: Arc<dyn SttSession>,
    pub timeout: Duration,
    pub fallback_text: String,
    pub events: mpsc::UnboundedSender<ReplyEvent>,
}

/// Progress of a reply, in order.
#[derive(Debug)]
pub(crate) enum ReplyEvent {
    /// The caller's turn as text.
    CallerText {
        turn: u32,
        text: String,
        stt_latency: Option<Duration>,
        stt_seconds: f64,
    },
    /// Agent audio at 8 kHz for `segment`.
    Audio {
        turn: u32,
        segment: u32,
        pcm: Vec<i16>,
    },
    /// `segment` is complete; it says `text`.
    SegmentEnd {
        turn: u32,
        segment: u32,
        text: String,
    },
    /// A provider failed (the fallback follows).
    ProviderFailed {
        stage: &'static str,
        provider: &'static str,
        message: String,
    },
    /// The reply is complete.
    Finished(Box<Finished>),
}

/// Summary of a completed reply.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    pub turn: u32,
    /// Everything the agent meant to say.
    pub text: String,
    pub llm: LlmOutcome,
    pub tts_characters: u64,
    pub tts_first_audio: Option<Duration>,
    /// A provider failed during this reply.
    pub failed: bool,
}

/// Runs the reply to completion (the caller cancels it by dropping/aborting the future).
pub(crate) async fn run(job: ReplyJob) {
    let mut finished = Finished {
        turn: job.turn,
        ..Finished::default()
    };
    let user_text = match &job.input {
        ReplyInput::Say(text) => {
            let text = text.clone();
            speak_with_fallback(&job, &mut finished, vec![text]).await;
            return finish(&job, finished);
        }
        ReplyInput::Text(text) => {
            send_caller_text(&job, text.clone(), None, 0.0);
            text.clone()
        }
        ReplyInput::Utterance(audio) => match transcribe(&job, audio).await {
            Ok(text) => text,
            Err(error) => {
                report_failure(&job, "stt", job.stt.name(), &error);
                finished.failed = true;
                let fallback = job.fallback_text.clone();
                speak_with_fallback(&job, &mut finished, vec![fallback]).await;
                return finish(&job, finished);
            }
        },
    };
    if user_text.trim().is_empty() {
        // Noise that transcribed to nothing: no reply.
        return finish(&job, finished);
    }
    if job.providers.is_echo()
        && let ReplyInput::Utterance(audio) = &job.input
    {
        echo(&job, &mut finished, &user_text, audio);
        return finish(&job, finished);
    }
    converse(&job, &mut finished, user_text).await;
    finish(&job, finished);
}

fn finish(job: &ReplyJob, finished: Finished) {
    let _ = job.events.send(ReplyEvent::Finished(Box::new(finished)));
}

fn send_caller_text(job: &ReplyJob, text: String, stt_latency: Option<Duration>, seconds: f64) {
    let _ = job.events.send(ReplyEvent::CallerText {
        turn: job.turn,
        text,
        stt_latency,
        stt_seconds: seconds,
    });
}

fn report_failure(
    job: &ReplyJob,
    stage: &'static str,
    provider: &'static str,
    error: &ProviderError,
) {
    tracing::warn!(stage, provider, %error, "provider failed");
    let _ = job.events.send(ReplyEvent::ProviderFailed {
        stage,
        provider,
        message: error.to_string(),
    });
}

async fn transcribe(job: &ReplyJob, audio: &[i16]) -> Result<String, ProviderError> {
    let started = Instant::now();
    let transcript = job.stt.transcribe_turn(audio, job.timeout).await?;
    send_caller_text(
        job,
        transcript.text.clone(),
        Some(started.elapsed()),
        transcript.billed_seconds,
    );
    Ok(transcript.text)
}

/// The builtin echo agent: the reply audio is the caller's own utterance, so the whole media
/// path and turn-taking are audible end to end without any provider.
fn echo(job: &ReplyJob, finished: &mut Finished, user_text: &str, audio: &[i16]) {
    let text = format!("You said: {user_text}");
    let _ = job.events.send(ReplyEvent::Audio {
        turn: job.turn,
        segment: 0,
        pcm: audio.to_vec(),
    });
    let _ = job.events.send(ReplyEvent::SegmentEnd {
        turn: job.turn,
        segment: 0,
        text: text.clone(),
    });
    finished.tts_first_audio = Some(Duration::ZERO);
    finished.llm.first_token = Some(Duration::ZERO);
    finished.text = text;
}

/// Language model and speech concurrently: sentences go to TTS as soon as they are complete.
async fn converse(job: &ReplyJob, finished: &mut Finished, user_text: String) {
    let mut messages = job.history.clone();
    messages.push(ChatMessage::new("user", user_text));
    let (sentence_tx, mut sentence_rx) = mpsc::unbounded_channel::<String>();
    let llm = async {
        let mut splitter = SentenceSplitter::default();
        let mut on_text = |text: &str| {
            for sentence in splitter.push(text) {
                let _ = sentence_tx.send(sentence);
            }
        };
        let result = job
            .providers
            .llm
            .stream_reply(&messages, &job.tools, job.timeout, &mut on_text)
            .await;
        if let Some(rest) = splitter.finish() {
            let _ = sentence_tx.send(rest);
        }
        drop(sentence_tx);
        result
    };
    let speech = async {
        let mut spoken = Vec::new();
        let mut stats = SpeechStats::default();
        while let Some(sentence) = sentence_rx.recv().await {
            let segment = spoken.len() as u32;
            if let Err(error) =
                speak_segment(job, &job.providers.tts, segment, &sentence, &mut stats).await
            {
                return (spoken, stats, Some(error));
            }
            spoken.push(sentence);
        }
        (spoken, stats, None)
    };
    let (llm_result, (spoken, stats, tts_error)) = tokio::join!(llm, speech);
    finished.tts_characters += stats.characters;
    finished.tts_first_audio = stats.first_audio;
    finished.text = spoken.join(" ");
    match llm_result {
        Ok(outcome) => finished.llm = outcome,
        Err(error) => {
            report_failure(job, "llm", job.providers.llm.name(), &error);
            finished.failed = true;
        }
    }
    if let Some(error) = tts_error {
        report_failure(job, "tts", job.providers.tts.name(), &error);
        finished.failed = true;
    }
    if finished.failed && spoken.is_empty() {
        let fallback = job.fallback_text.clone();
        speak_with_fallback(job, finished, vec![fallback]).await;
    }
}

#[derive(Default)]
struct SpeechStats {
    characters: u64,
    first_audio: Option<Duration>,
}

/// Speaks fixed sentences with the configured voice, or the builtin one if that fails.
async fn speak_with_fallback(job: &ReplyJob, finished: &mut Finished, sentences: Vec<String>) {
    let mut stats = SpeechStats::default();
    let mut voice = &job.providers.tts;
    let mut spoken = Vec::new();
    for (index, sentence) in sentences.into_iter().enumerate() {
        let segment = index as u32;
        if let Err(error) = speak_segment(job, voice, segment, &sentence, &mut stats).await {
            report_failure(job, "tts", voice.name(), &error);
            finished.failed = true;
            voice = &job.providers.builtin_tts;
            // The builtin voice cannot fail.
            let _ = speak_segment(job, voice, segment, &sentence, &mut stats).await;
        }
        spoken.push(sentence);
    }
    finished.tts_characters += stats.characters;
    finished.tts_first_audio = finished.tts_first_audio.or(stats.first_audio);
    finished.text = spoken.join(" ");
}

async fn speak_segment(
    job: &ReplyJob,
    tts: &Tts,
    segment: u32,
    text: &str,
    stats: &mut SpeechStats,
) -> Result<(), ProviderError> {
    let started = Instant::now();
    let mut resampler = Resampler::new(tts.sample_rate(), 8000);
    let mut first_audio = None;
    let mut on_audio = |pcm: &[i16]| {
        let mut out = Vec::with_capacity(pcm.len());
        resampler.process(pcm, &mut out);
        first_audio.get_or_insert_with(|| started.elapsed());
        if !out.is_empty() {
            let _ = job.events.send(ReplyEvent::Audio {
                turn: job.turn,
                segment,
                pcm: out,
            });
        }
    };
    tts.synthesize(text, job.timeout, &mut on_audio).await?;
    stats.characters += text.chars().count() as u64;
    if stats.first_audio.is_none() {
        stats.first_audio = first_audio;
    }
    let _ = job.events.send(ReplyEvent::SegmentEnd {
        turn: job.turn,
        segment,
        text: text.to_owned(),
    });
    Ok(())
}
