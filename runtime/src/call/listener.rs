//! The caller's side of a call: carrier audio decoded into 20 ms frames, voice activity and
//! turn detection, the audio of each caller turn (with a little pre-roll so the first syllable
//! is kept), the call's stream to a streaming speech-to-text provider, and that provider's
//! words and end-of-speech events for the end-of-turn decision.
//!
//! Socket-free: the call (or the turn-taking evaluation) feeds it carrier payloads and STT
//! events and acts on what it heard. Time is counted in frames of audio received.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::codec::G711;
use crate::providers::stt::STT_RATE;
use crate::providers::{SttEvent, SttSession};
use crate::resample::Resampler;
use crate::turn::{EndOfTurn, TurnDetector, TurnEvent, TurnTaking};
use crate::vad::{FRAME_MS, FRAME_SAMPLES, VoiceActivity, level_dbfs};

/// Audio kept from before speech was detected, so the first syllable is not clipped.
pub(crate) const PREROLL_FRAMES: usize = 10;
/// Longest caller turn kept for transcription (60 s at 8 kHz).
const MAX_UTTERANCE_SAMPLES: usize = 8000 * 60;

/// A streaming STT event about words that ended this long before the current turn started
/// belongs to the turn before.
const STALE_EVENT_MS: u64 = 100;

/// What the listener concluded from the audio.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Heard {
    /// The caller is speaking (long enough to count, e.g. to interrupt the agent).
    SpeechStarted,
    /// The caller's turn ended; its audio at 8 kHz, without the trailing silence.
    TurnEnded(Arc<Vec<i16>>),
}

/// Inbound audio of one call.
#[derive(Debug)]
pub(crate) struct Listener {
    vad: Box<dyn VoiceActivity>,
    turns: TurnDetector,
    end_of_turn: EndOfTurn,
    /// Frames received so far.
    frames: u64,
    /// First frame of the current utterance's audio (its pre-roll included).
    utterance_start: u64,
    /// Pre-roll samples at the start of the current utterance.
    utterance_preroll: usize,
    decoded: Vec<i16>,
    partial: Vec<i16>,
    preroll: VecDeque<i16>,
    utterance: Vec<i16>,
    stt: Arc<dyn SttSession>,
    upsampler: Resampler,
    wide: Vec<i16>,
    streamed_seconds: f64,
}

impl Listener {
    /// A listener taking turns as `taking` says, streaming to `stt` when it is a streaming
    /// session.
    pub fn new(taking: &TurnTaking, stt: Arc<dyn SttSession>) -> Self {
        Self {
            vad: taking.vad.detector(),
            turns: TurnDetector::new(taking.detector),
            end_of_turn: EndOfTurn::new(taking.end_of_turn),
            frames: 0,
            utterance_start: 0,
            utterance_preroll: 0,
            decoded: Vec::with_capacity(FRAME_SAMPLES),
            partial: Vec::with_capacity(FRAME_SAMPLES),
            preroll: VecDeque::with_capacity(PREROLL_FRAMES * FRAME_SAMPLES),
            utterance: Vec::new(),
            stt,
            upsampler: Resampler::new(8000, STT_RATE),
            wide: Vec::new(),
            streamed_seconds: 0.0,
        }
    }

    /// The call's speech-to-text session.
    pub fn stt(&self) -> &Arc<dyn SttSession> {
        &self.stt
    }

    /// Seconds of audio the streaming session accepted (its usage).
    pub fn streamed_seconds(&self) -> f64 {
        self.streamed_seconds
    }

    /// True once the caller's speech is confirmed, until their turn ends.
    pub fn is_speaking(&self) -> bool {
        self.turns.is_speaking()
    }

    /// Where the audio of the current (or last) utterance starts, ms into the stream: what
    /// the STT is given of the caller's turn begins here.
    pub fn utterance_start_ms(&self) -> u64 {
        self.utterance_start * u64::from(FRAME_MS)
    }

    /// A streaming STT's words or end-of-speech signal; the turn may end on it.
    pub fn on_stt_event(&mut self, event: SttEvent, heard: &mut Vec<Heard>) {
        if self.end_of_turn.config().adaptive {
            // The transcript ends turns from now on: bursts just after one need more.
            self.turns.enable_post_turn();
        }
        if !self.turns.in_utterance() {
            return;
        }
        let end_ms = match &event {
            SttEvent::Words { end_ms, .. } => *end_ms,
            SttEvent::UtteranceEnd { last_word_end_ms } => *last_word_end_ms,
        };
        if end_ms + STALE_EVENT_MS < self.utterance_start_ms() {
            return;
        }
        match event {
            SttEvent::Words {
                text,
                is_final,
                speech_final,
                ..
            } => self.end_of_turn.on_words(&text, is_final, speech_final),
            SttEvent::UtteranceEnd { .. } => self.end_of_turn.on_utterance_end(),
        }
        if self.turns.is_speaking() && self.end_of_turn.stt_ended(self.turns.silent_frames()) {
            let event = self.turns.end_now();
            if let Some(turn) = self.turn_over(event) {
                heard.push(turn);
            }
        }
    }

    /// Decodes one carrier payload and appends what was heard, frame by frame, to `heard`.
    /// Returns the number of complete frames it made.
    pub fn on_media(&mut self, codec: G711, payload: &[u8], heard: &mut Vec<Heard>) -> u64 {
        let before = self.frames;
        let mut decoded = std::mem::take(&mut self.decoded);
        decoded.clear();
        codec.decode_into(payload, &mut decoded);
        let mut offset = 0;
        while offset < decoded.len() {
            let take = (FRAME_SAMPLES - self.partial.len()).min(decoded.len() - offset);
            self.partial
                .extend_from_slice(&decoded[offset..offset + take]);
            offset += take;
            if self.partial.len() == FRAME_SAMPLES {
                let frame = std::mem::take(&mut self.partial);
                if let Some(event) = self.on_frame(&frame) {
                    heard.push(event);
                }
                self.partial = frame;
                self.partial.clear();
            }
        }
        self.decoded = decoded;
        self.frames - before
    }

    /// Classifies one 20 ms frame, keeps the audio of the caller's turn, feeds streaming STT.
    fn on_frame(&mut self, frame: &[i16]) -> Option<Heard> {
        self.frames += 1;
        if self.stt.is_streaming() {
            self.wide.clear();
            self.upsampler.process(frame, &mut self.wide);
            if self.stt.send_audio(&self.wide) {
                self.streamed_seconds += f64::from(FRAME_MS) / 1000.0;
            }
        }
        let probability = self.vad.speech_probability(frame);
        let was_in_utterance = self.turns.in_utterance();
        let mut event =
            self.turns
                .push_frame(probability, level_dbfs(frame), self.end_of_turn_frames());
        if was_in_utterance {
            if self.utterance.len() < MAX_UTTERANCE_SAMPLES {
                self.utterance.extend_from_slice(frame);
            }
        } else if self.turns.in_utterance() {
            self.utterance.clear();
            self.utterance.extend(self.preroll.iter().copied());
            self.utterance.extend_from_slice(frame);
            self.utterance_preroll = self.preroll.len();
            self.utterance_start = self.frames - 1 - (self.preroll.len() / FRAME_SAMPLES) as u64;
        }
        if self.preroll.len() + frame.len() > PREROLL_FRAMES * FRAME_SAMPLES {
            self.preroll.drain(..frame.len());
        }
        self.preroll.extend(frame.iter().copied());
        if event == TurnEvent::None
            && self.turns.is_speaking()
            && self.end_of_turn.stt_ended(self.turns.silent_frames())
        {
            event = self.turns.end_now();
        }
        self.turn_over(event)
    }

    /// The detector's silent frames that end the turn now: the wait is meant as the caller's
    /// silence, and a detector that keeps hearing the last word for a few frames (the neural
    /// network's window) has already let that much of it pass when its silence starts.
    fn end_of_turn_frames(&self) -> u32 {
        self.end_of_turn
            .wait_frames()
            .saturating_sub(self.vad.trailing_frames())
            .max(1)
    }

    /// Bookkeeping of a turn event; what the call hears of it.
    fn turn_over(&mut self, event: TurnEvent) -> Option<Heard> {
        match event {
            TurnEvent::SpeechStarted => Some(Heard::SpeechStarted),
            TurnEvent::TurnEnded { speech_ms } => {
                // Keep the pre-roll and the speech; drop the trailing end-of-turn silence, it
                // is not part of what was said.
                let keep =
                    self.utterance_preroll + speech_ms as usize * FRAME_SAMPLES / FRAME_MS as usize;
                self.utterance.truncate(keep);
                self.end_of_turn.reset();
                Some(Heard::TurnEnded(Arc::new(std::mem::take(
                    &mut self.utterance,
                ))))
            }
            TurnEvent::Discarded => {
                self.utterance.clear();
                self.end_of_turn.reset();
                None
            }
            TurnEvent::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use futures::future::BoxFuture;

    use super::*;
    use crate::providers::{ProviderError, Transcript};
    use crate::vad::signals::{noise, speech_like};

    /// A streaming session that records what it is sent.
    #[derive(Debug, Default)]
    struct Recorder {
        samples: Mutex<usize>,
    }

    impl SttSession for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn is_streaming(&self) -> bool {
            true
        }
        fn send_audio(&self, pcm_16k: &[i16]) -> bool {
            *self.samples.lock().unwrap() += pcm_16k.len();
            true
        }
        fn transcribe_turn<'a>(
            &'a self,
            _audio_8k: &'a [i16],
            _timeout: Duration,
        ) -> BoxFuture<'a, Result<Transcript, ProviderError>> {
            Box::pin(async { Ok(Transcript::default()) })
        }
    }

    fn feed(listener: &mut Listener, pcm: &[i16], payload_samples: usize) -> Vec<(usize, Heard)> {
        feed_counting(listener, pcm, payload_samples).0
    }

    fn feed_counting(
        listener: &mut Listener,
        pcm: &[i16],
        payload_samples: usize,
    ) -> (Vec<(usize, Heard)>, u64) {
        let mut out = Vec::new();
        let mut heard = Vec::new();
        let mut bytes = Vec::new();
        let mut frames = 0;
        for (index, chunk) in pcm.chunks(payload_samples).enumerate() {
            bytes.clear();
            G711::Mulaw.encode_into(chunk, &mut bytes);
            frames += listener.on_media(G711::Mulaw, &bytes, &mut heard);
            out.extend(heard.drain(..).map(|h| (index, h)));
        }
        (out, frames)
    }

    #[test]
    fn a_turn_is_heard_with_pre_roll_and_without_the_trailing_silence() {
        let recorder = Arc::new(Recorder::default());
        let mut listener = Listener::new(&TurnTaking::original(300), recorder.clone());
        // 0.5 s quiet line, 1 s speech, 0.5 s quiet line; carriers' payload sizes vary, so
        // feed 100-sample payloads that straddle frames.
        let mut pcm = noise(4000, 3, 20.0);
        pcm.extend(speech_like(8000, 0, 8000.0));
        pcm.extend(noise(4000, 4, 20.0));
        let (heard, frames) = feed_counting(&mut listener, &pcm, 100);
        assert_eq!(heard.len(), 2, "{heard:?}");
        assert_eq!(heard[0].1, Heard::SpeechStarted);
        let Heard::TurnEnded(audio) = &heard[1].1 else {
            panic!("{heard:?}")
        };
        // 1 s of speech plus at most the pre-roll (200 ms), a frame of slack each side.
        let seconds = audio.len() as f32 / 8000.0;
        assert!((0.98..=1.22).contains(&seconds), "{seconds}");
        // Speech started 8 voiced frames (160 ms) in; the end 300 ms after the last voice.
        let at_ms = |payload: usize| payload * 100 / 8;
        assert!(
            (600..=720).contains(&at_ms(heard[0].0)),
            "{}",
            at_ms(heard[0].0)
        );
        assert!(
            (1750..=1860).contains(&at_ms(heard[1].0)),
            "{}",
            at_ms(heard[1].0)
        );
        // Every complete frame was counted and streamed at 16 kHz.
        assert_eq!(frames, 100);
        assert_eq!(*recorder.samples.lock().unwrap(), 100 * 320);
        assert!((listener.streamed_seconds() - 2.0).abs() < 1e-9);
    }

    /// A detector that hears speech in loud frames and keeps hearing it for `trailing`
    /// frames after, as the neural network does.
    #[derive(Debug)]
    struct Trailing {
        trailing: u32,
        left: u32,
    }

    impl VoiceActivity for Trailing {
        fn name(&self) -> &'static str {
            "trailing"
        }
        fn speech_probability(&mut self, frame: &[i16]) -> f32 {
            if level_dbfs(frame) > -40.0 {
                self.left = self.trailing;
                1.0
            } else if self.left > 0 {
                self.left -= 1;
                1.0
            } else {
                0.0
            }
        }
        fn trailing_frames(&self) -> u32 {
            self.trailing
        }
    }

    #[test]
    fn the_end_of_turn_wait_is_the_callers_silence_whatever_the_detector_trails() {
        let stt: Arc<dyn SttSession> = Arc::new(Recorder::default());
        // 1 s of speech then 1 s of a quiet line, a 300 ms wait: the turn ends 300 ms after
        // the speech, however long the detector goes on hearing it.
        let mut pcm = speech_like(8000, 0, 8000.0);
        pcm.extend(noise(8000, 4, 20.0));
        for trailing in [0, 3, 5] {
            let mut listener = Listener::new(&TurnTaking::original(300), stt.clone());
            listener.vad = Box::new(Trailing { trailing, left: 0 });
            let heard = feed(&mut listener, &pcm, 160);
            let ended = heard
                .iter()
                .find(|(_, h)| matches!(h, Heard::TurnEnded(_)))
                .map(|(frame, _)| *frame);
            // Frames 0-49 are speech; 15 frames of silence later is frame 64.
            assert_eq!(ended, Some(64), "trailing {trailing}: {heard:?}");
        }
    }

    #[test]
    fn a_click_is_not_a_turn_and_per_turn_stt_gets_no_stream() {
        let stt = Arc::new(crate::providers::stt::PerTurnStt(
            crate::providers::Stt::Builtin,
        ));
        let mut listener = Listener::new(&TurnTaking::original(300), stt);
        let mut pcm = noise(4000, 3, 20.0);
        pcm.extend(speech_like(480, 0, 12000.0)); // 60 ms burst
        pcm.extend(noise(8000, 4, 20.0));
        assert_eq!(feed(&mut listener, &pcm, 160), Vec::new());
        assert_eq!(listener.streamed_seconds(), 0.0);
        // The burst's audio was dropped: the next turn starts clean.
        let heard = feed(&mut listener, &speech_like(8000, 0, 8000.0), 160);
        assert_eq!(heard, vec![(7, Heard::SpeechStarted)]);
    }
}
