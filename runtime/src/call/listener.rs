//! The caller's side of a call: carrier audio decoded into 20 ms frames, voice activity and
//! turn detection, the audio of each caller turn (with a little pre-roll so the first syllable
//! is kept), and the call's stream to a streaming speech-to-text provider.
//!
//! Socket-free: the call feeds it carrier payloads and acts on what it heard.

use std::collections::VecDeque;
use std::sync::Arc;

use prometheus::IntCounter;

use crate::codec::G711;
use crate::providers::SttSession;
use crate::providers::stt::STT_RATE;
use crate::resample::Resampler;
use crate::vad::{FRAME_MS, FRAME_SAMPLES, TurnConfig, TurnDetector, TurnEvent, Vad};

/// Audio kept from before speech was detected, so the first syllable is not clipped.
pub(crate) const PREROLL_FRAMES: usize = 10;
/// Longest caller turn kept for transcription (60 s at 8 kHz).
const MAX_UTTERANCE_SAMPLES: usize = 8000 * 60;

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
    vad: Vad,
    turns: TurnDetector,
    /// Samples of trailing silence that end a turn (cut from the turn's audio).
    end_of_turn_samples: usize,
    decoded: Vec<i16>,
    partial: Vec<i16>,
    preroll: VecDeque<i16>,
    utterance: Vec<i16>,
    stt: Arc<dyn SttSession>,
    upsampler: Resampler,
    wide: Vec<i16>,
    streamed_seconds: f64,
    frames_in: IntCounter,
}

impl Listener {
    /// A listener ending turns after `end_of_turn_ms` of silence, streaming to `stt` when it
    /// is a streaming session, counting frames in `frames_in`.
    pub fn new(end_of_turn_ms: u32, stt: Arc<dyn SttSession>, frames_in: IntCounter) -> Self {
        Self {
            vad: Vad::default(),
            turns: TurnDetector::new(TurnConfig::from_silence_ms(end_of_turn_ms)),
            end_of_turn_samples: end_of_turn_ms as usize * 8,
            decoded: Vec::with_capacity(FRAME_SAMPLES),
            partial: Vec::with_capacity(FRAME_SAMPLES),
            preroll: VecDeque::with_capacity(PREROLL_FRAMES * FRAME_SAMPLES),
            utterance: Vec::new(),
            stt,
            upsampler: Resampler::new(8000, STT_RATE),
            wide: Vec::new(),
            streamed_seconds: 0.0,
            frames_in,
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

    /// Decodes one carrier payload and appends what was heard, frame by frame, to `heard`.
    pub fn on_media(&mut self, codec: G711, payload: &[u8], heard: &mut Vec<Heard>) {
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
    }

    /// Classifies one 20 ms frame, keeps the audio of the caller's turn, feeds streaming STT.
    fn on_frame(&mut self, frame: &[i16]) -> Option<Heard> {
        self.frames_in.inc();
        if self.stt.is_streaming() {
            self.wide.clear();
            self.upsampler.process(frame, &mut self.wide);
            if self.stt.send_audio(&self.wide) {
                self.streamed_seconds += f64::from(FRAME_MS) / 1000.0;
            }
        }
        let voiced = self.vad.is_speech(frame);
        let was_in_utterance = self.turns.in_utterance();
        let event = self.turns.push(voiced);
        if was_in_utterance {
            if self.utterance.len() < MAX_UTTERANCE_SAMPLES {
                self.utterance.extend_from_slice(frame);
            }
        } else if self.turns.in_utterance() {
            self.utterance.clear();
            self.utterance.extend(self.preroll.iter().copied());
            self.utterance.extend_from_slice(frame);
        }
        if self.preroll.len() + frame.len() > PREROLL_FRAMES * FRAME_SAMPLES {
            self.preroll.drain(..frame.len());
        }
        self.preroll.extend(frame.iter().copied());
        match event {
            TurnEvent::SpeechStarted => Some(Heard::SpeechStarted),
            TurnEvent::TurnEnded { .. } => {
                // Drop the trailing end-of-turn silence: it is not part of what was said.
                let keep = self
                    .utterance
                    .len()
                    .saturating_sub(self.end_of_turn_samples);
                self.utterance.truncate(keep);
                Some(Heard::TurnEnded(Arc::new(std::mem::take(
                    &mut self.utterance,
                ))))
            }
            TurnEvent::Discarded => {
                self.utterance.clear();
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
        let mut out = Vec::new();
        let mut heard = Vec::new();
        let mut bytes = Vec::new();
        for (index, chunk) in pcm.chunks(payload_samples).enumerate() {
            bytes.clear();
            G711::Mulaw.encode_into(chunk, &mut bytes);
            listener.on_media(G711::Mulaw, &bytes, &mut heard);
            out.extend(heard.drain(..).map(|h| (index, h)));
        }
        out
    }

    fn counter() -> IntCounter {
        IntCounter::new("frames", "frames").unwrap()
    }

    #[test]
    fn a_turn_is_heard_with_pre_roll_and_without_the_trailing_silence() {
        let recorder = Arc::new(Recorder::default());
        let frames_in = counter();
        let mut listener = Listener::new(300, recorder.clone(), frames_in.clone());
        // 0.5 s quiet line, 1 s speech, 0.5 s quiet line; carriers' payload sizes vary, so
        // feed 100-sample payloads that straddle frames.
        let mut pcm = noise(4000, 3, 20.0);
        pcm.extend(speech_like(8000, 0, 8000.0));
        pcm.extend(noise(4000, 4, 20.0));
        let heard = feed(&mut listener, &pcm, 100);
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
        assert_eq!(frames_in.get(), 100);
        assert_eq!(*recorder.samples.lock().unwrap(), 100 * 320);
        assert!((listener.streamed_seconds() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_click_is_not_a_turn_and_per_turn_stt_gets_no_stream() {
        let stt = Arc::new(crate::providers::stt::PerTurnStt(
            crate::providers::Stt::Builtin,
        ));
        let mut listener = Listener::new(300, stt, counter());
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
