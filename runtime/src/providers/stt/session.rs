//! What a call's speech-to-text session is, whatever the vendor: the [`SttSession`] trait the
//! call's listener drives, the turn [`Transcript`], and the [`SttEvent`]s a streaming provider
//! reports for the end-of-turn decision. Apart from [`super`] (which picks and opens a
//! vendor's session) so that vendor modules such as [`crate::providers::deepgram`] implement
//! it without depending on the module that opens them.

use std::time::Duration;

use futures::future::BoxFuture;

use crate::providers::ProviderError;

/// What a streaming STT reports while the caller speaks (for the end-of-turn decision).
#[derive(Clone, Debug, PartialEq)]
pub enum SttEvent {
    /// Words: an interim guess (replaced by the next) or final ones.
    Words {
        /// The words.
        text: String,
        /// Final (will not change) rather than interim.
        is_final: bool,
        /// The provider's endpointing detected the end of speech.
        speech_final: bool,
        /// Where these words end in the stream (ms of audio sent).
        end_ms: u64,
    },
    /// No words for the provider's utterance-end gap.
    UtteranceEnd {
        /// Where the last word ended in the stream (ms of audio sent).
        last_word_end_ms: u64,
    },
}

/// How the end-of-turn decision wants a streaming STT to report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamingOptions {
    /// Ask for interim results, endpointing and utterance-end events.
    pub turn_events: bool,
    /// Silence (ms) after which the provider marks speech final.
    pub endpointing_ms: u32,
}

/// The caller's words of one turn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transcript {
    /// What the caller said.
    pub text: String,
    /// Audio seconds this turn adds to the call's STT usage (streaming sessions bill the
    /// call's whole stream as it is sent, so they report zero here).
    pub billed_seconds: f64,
}

/// A call's speech-to-text, whatever the vendor: per-turn providers transcribe the turn's
/// audio when it ends; streaming ones are fed every frame and flushed at the end of a turn.
///
/// Boxed futures keep the trait object-safe: one session per call, one turn at a time, so the
/// allocation is noise next to the network round trip.
pub trait SttSession: Send + Sync + std::fmt::Debug {
    /// Provider name for events and metrics.
    fn name(&self) -> &'static str;

    /// True when the session wants every frame of the call through [`Self::send_audio`].
    fn is_streaming(&self) -> bool {
        false
    }

    /// Queues 16 kHz audio of the call; never waits. False when it was not accepted.
    fn send_audio(&self, _pcm_16k: &[i16]) -> bool {
        false
    }

    /// The text of the turn that just ended; `audio_8k` is the turn's audio at 8 kHz.
    fn transcribe_turn<'a>(
        &'a self,
        audio_8k: &'a [i16],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Transcript, ProviderError>>;
}
