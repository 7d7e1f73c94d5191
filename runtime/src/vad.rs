//! Voice-activity detection and end-of-turn detection.
//!
//! The VAD is written by hand (energy against an adaptive noise floor, gated by the
//! zero-crossing rate) instead of `webrtc-vad` (a C build) or a neural VAD (a model download):
//! it builds offline, costs a few hundred operations per 20 ms frame, and on band-limited
//! 8 kHz telephone audio the decisive signal is level above the line's own noise. Turn-taking
//! on top of it needs hysteresis far more than a sharper frame classifier.

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Duration of one frame.
pub const FRAME_MS: u32 = 20;

/// Tunables of [`Vad`].
#[derive(Clone, Copy, Debug)]
pub struct VadConfig {
    /// Frames quieter than this (dBFS) are never speech, however quiet the line is.
    pub absolute_floor_db: f32,
    /// How far above the noise floor (dB) a frame must be to count as speech.
    pub margin_db: f32,
    /// Above this zero-crossing rate a frame looks like hiss, and needs `hiss_margin_db`.
    pub hiss_zcr: f32,
    /// Margin required of high zero-crossing frames (fricatives are loud; hiss is not).
    pub hiss_margin_db: f32,
    /// How fast (dB per frame) the noise floor rises towards louder background noise.
    pub floor_rise_db: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            absolute_floor_db: -48.0,
            margin_db: 10.0,
            hiss_zcr: 0.35,
            hiss_margin_db: 22.0,
            floor_rise_db: 0.15,
        }
    }
}

/// Frame-by-frame speech/non-speech classifier with an adaptive noise floor.
#[derive(Clone, Debug)]
pub struct Vad {
    config: VadConfig,
    noise_floor_db: f32,
}

impl Default for Vad {
    fn default() -> Self {
        Self::new(VadConfig::default())
    }
}

impl Vad {
    /// A detector starting from a quiet-line assumption.
    pub fn new(config: VadConfig) -> Self {
        Self {
            config,
            noise_floor_db: -60.0,
        }
    }

    /// Current noise-floor estimate in dBFS.
    pub fn noise_floor_db(&self) -> f32 {
        self.noise_floor_db
    }

    /// Classifies one frame (any length; 20 ms expected) and updates the noise floor.
    pub fn is_speech(&mut self, frame: &[i16]) -> bool {
        if frame.is_empty() {
            return false;
        }
        let level = level_dbfs(frame);
        let zcr = zero_crossing_rate(frame);
        let margin = if zcr > self.config.hiss_zcr {
            self.config.hiss_margin_db
        } else {
            self.config.margin_db
        };
        let speech = level > self.config.absolute_floor_db && level > self.noise_floor_db + margin;
        // Hiss-like frames teach the floor fast; voiced frames barely move it, so a long
        // sentence without pauses does not become "background".
        let rise = if zcr > self.config.hiss_zcr {
            self.config.floor_rise_db
        } else {
            self.config.floor_rise_db / 6.0
        };
        self.track_noise_floor(level, rise);
        speech
    }

    /// Minimum tracking: drops quickly to quieter frames, rises slowly under steady noise, so
    /// a noisy line stops looking like speech after a few seconds while pauses between words
    /// keep the floor down during real speech.
    fn track_noise_floor(&mut self, level: f32, rise_db: f32) {
        if level < self.noise_floor_db {
            self.noise_floor_db = 0.6 * self.noise_floor_db + 0.4 * level;
        } else {
            self.noise_floor_db += rise_db.min(level - self.noise_floor_db);
        }
        self.noise_floor_db = self.noise_floor_db.clamp(-90.0, -10.0);
    }
}

/// RMS level of `frame` in dB relative to full scale.
pub fn level_dbfs(frame: &[i16]) -> f32 {
    let energy: f64 = frame.iter().map(|s| f64::from(*s).powi(2)).sum();
    let rms = (energy / frame.len().max(1) as f64).sqrt();
    (20.0 * (rms.max(1.0) / 32768.0).log10()) as f32
}

/// Share of adjacent sample pairs that change sign.
pub fn zero_crossing_rate(frame: &[i16]) -> f32 {
    if frame.len() < 2 {
        return 0.0;
    }
    let crossings = frame
        .windows(2)
        .filter(|w| (w[0] >= 0) != (w[1] >= 0))
        .count();
    crossings as f32 / (frame.len() - 1) as f32
}

/// What the turn detector concluded after a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnEvent {
    /// Nothing changed.
    None,
    /// The caller has been speaking long enough to count (used for barge-in).
    SpeechStarted,
    /// The caller stopped: `silence` has lasted the configured end-of-turn time.
    TurnEnded {
        /// Milliseconds from the first to the last voiced frame.
        speech_ms: u32,
    },
    /// A short burst (cough, click) that never became speech.
    Discarded,
}

/// Tunables of [`TurnDetector`].
#[derive(Clone, Copy, Debug)]
pub struct TurnConfig {
    /// Voiced frames needed before speech counts (and may barge in).
    pub min_speech_frames: u32,
    /// Silent frames that end a turn.
    pub end_of_turn_frames: u32,
    /// Silent frames that abandon a burst that never reached `min_speech_frames`.
    pub abandon_frames: u32,
}

impl TurnConfig {
    /// Config from the tenant's end-of-turn silence.
    pub fn from_silence_ms(end_of_turn_silence_ms: u32) -> Self {
        Self {
            min_speech_frames: 8,
            end_of_turn_frames: (end_of_turn_silence_ms / FRAME_MS).max(1),
            abandon_frames: 15,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TurnState {
    Idle,
    /// Some voiced frames; not yet speech.
    Candidate {
        voiced: u32,
        frames: u32,
        silent_run: u32,
    },
    /// Confirmed speech.
    Speaking {
        frames: u32,
        last_voiced: u32,
    },
}

/// Hysteresis over VAD decisions: speech start, end of turn, and discarded bursts.
#[derive(Clone, Debug)]
pub struct TurnDetector {
    config: TurnConfig,
    state: TurnState,
}

impl TurnDetector {
    /// A detector waiting for speech.
    pub fn new(config: TurnConfig) -> Self {
        Self {
            config,
            state: TurnState::Idle,
        }
    }

    /// True while a burst or confirmed speech is under way (audio should be kept).
    pub fn in_utterance(&self) -> bool {
        self.state != TurnState::Idle
    }

    /// Feeds one frame's VAD decision.
    pub fn push(&mut self, voiced: bool) -> TurnEvent {
        let (state, event) = match self.state {
            TurnState::Idle if voiced => (
                TurnState::Candidate {
                    voiced: 1,
                    frames: 1,
                    silent_run: 0,
                },
                TurnEvent::None,
            ),
            TurnState::Idle => (TurnState::Idle, TurnEvent::None),
            TurnState::Candidate {
                voiced: v,
                frames,
                silent_run,
            } => self.advance_candidate(v, frames, silent_run, voiced),
            TurnState::Speaking {
                frames,
                last_voiced,
            } => self.advance_speaking(frames + 1, if voiced { frames + 1 } else { last_voiced }),
        };
        self.state = state;
        event
    }

    fn advance_candidate(
        &self,
        voiced_count: u32,
        frames: u32,
        silent_run: u32,
        voiced: bool,
    ) -> (TurnState, TurnEvent) {
        let voiced_count = voiced_count + u32::from(voiced);
        let frames = frames + 1;
        let silent_run = if voiced { 0 } else { silent_run + 1 };
        if voiced_count >= self.config.min_speech_frames {
            let last_voiced = if voiced { frames } else { frames - silent_run };
            (
                TurnState::Speaking {
                    frames,
                    last_voiced,
                },
                TurnEvent::SpeechStarted,
            )
        } else if silent_run >= self.config.abandon_frames {
            (TurnState::Idle, TurnEvent::Discarded)
        } else {
            (
                TurnState::Candidate {
                    voiced: voiced_count,
                    frames,
                    silent_run,
                },
                TurnEvent::None,
            )
        }
    }

    fn advance_speaking(&self, frames: u32, last_voiced: u32) -> (TurnState, TurnEvent) {
        if frames - last_voiced >= self.config.end_of_turn_frames {
            (
                TurnState::Idle,
                TurnEvent::TurnEnded {
                    speech_ms: last_voiced * FRAME_MS,
                },
            )
        } else {
            (
                TurnState::Speaking {
                    frames,
                    last_voiced,
                },
                TurnEvent::None,
            )
        }
    }
}

/// Generators of test and benchmark signals (speech-like and noise), shared with the bench.
pub mod signals {
    use std::f32::consts::PI;

    /// A voiced, speech-like signal: a 120 Hz glottal harmonic series shaped by two formants
    /// and modulated at a 4 Hz syllable rate, at roughly `level` peak amplitude.
    pub fn speech_like(samples: usize, offset: usize, level: f32) -> Vec<i16> {
        (offset..offset + samples)
            .map(|n| {
                let t = n as f32 / 8000.0;
                let mut v = 0.0;
                for harmonic in 1..=25 {
                    let f = 120.0 * harmonic as f32;
                    // Formant-ish emphasis around 700 Hz and 1200 Hz.
                    let gain = formant(f, 700.0, 150.0) + 0.7 * formant(f, 1200.0, 200.0);
                    v += gain * (2.0 * PI * f * t).sin();
                }
                let syllables = 0.6 + 0.4 * (2.0 * PI * 4.0 * t).sin();
                (v * syllables * level / 2.0).clamp(-32767.0, 32767.0) as i16
            })
            .collect()
    }

    fn formant(f: f32, centre: f32, width: f32) -> f32 {
        1.0 / (1.0 + ((f - centre) / width).powi(2))
    }

    /// Deterministic white-ish noise of roughly `amplitude` RMS.
    pub fn noise(samples: usize, seed: u32, amplitude: f32) -> Vec<i16> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..samples)
            .map(|_| {
                // xorshift32: good enough for noise, no dependency.
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let uniform = (state as f32 / u32::MAX as f32) * 2.0 - 1.0;
                (uniform * amplitude * 1.7) as i16
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::signals::{noise, speech_like};
    use super::*;

    fn decisions(vad: &mut Vad, signal: &[i16]) -> Vec<bool> {
        signal
            .chunks(FRAME_SAMPLES)
            .map(|frame| vad.is_speech(frame))
            .collect()
    }

    fn share(decisions: &[bool]) -> f32 {
        decisions.iter().filter(|d| **d).count() as f32 / decisions.len() as f32
    }

    #[test]
    fn speech_like_signal_is_speech_and_silence_is_not() {
        let mut vad = Vad::default();
        let quiet = decisions(&mut vad, &noise(8000, 1, 30.0));
        assert!(share(&quiet) < 0.02, "quiet line: {}", share(&quiet));
        let speech = decisions(&mut vad, &speech_like(8000, 0, 8000.0));
        assert!(share(&speech) > 0.9, "speech: {}", share(&speech));
        let zeros = decisions(&mut vad, &vec![0; 8000]);
        assert!(share(&zeros) == 0.0);
    }

    #[test]
    fn steady_noise_stops_being_speech_once_learnt() {
        let mut vad = Vad::default();
        // Hiss at about -35 dBFS: loud, but with a hiss-like zero-crossing rate.
        let hiss = decisions(&mut vad, &noise(8000 * 4, 7, 600.0));
        assert!(share(&hiss[100..]) < 0.05, "hiss: {}", share(&hiss[100..]));
        // Speech over that noise is still found.
        let mut noisy_speech = speech_like(8000, 0, 8000.0);
        for (s, n) in noisy_speech.iter_mut().zip(noise(8000, 9, 600.0)) {
            *s = s.saturating_add(n);
        }
        // Syllable troughs sink into the noise; the peaks must still be found.
        let found = share(&decisions(&mut vad, &noisy_speech));
        assert!(found > 0.6, "noisy speech: {found}");
    }

    #[test]
    fn turn_ends_after_the_configured_silence() {
        let mut detector = TurnDetector::new(TurnConfig::from_silence_ms(400));
        let mut events = Vec::new();
        for frame in 0..100 {
            // 1 s of speech, then silence.
            events.push((frame, detector.push(frame < 50)));
        }
        let started: Vec<_> = events
            .iter()
            .filter(|(_, e)| *e == TurnEvent::SpeechStarted)
            .collect();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].0, 7, "speech confirmed after 8 voiced frames");
        let ended: Vec<_> = events
            .iter()
            .filter(|(_, e)| matches!(e, TurnEvent::TurnEnded { .. }))
            .collect();
        assert_eq!(ended.len(), 1);
        // Last voiced frame is 49; 20 silent frames (400 ms) later is frame 69.
        assert_eq!(ended[0].0, 69);
        assert_eq!(ended[0].1, TurnEvent::TurnEnded { speech_ms: 1000 });
    }

    #[test]
    fn short_pauses_do_not_end_the_turn_and_clicks_are_discarded() {
        let mut detector = TurnDetector::new(TurnConfig::from_silence_ms(400));
        let pattern = (0..30)
            .map(|_| true)
            .chain((0..10).map(|_| false))
            .chain((0..30).map(|_| true));
        let ends = pattern
            .map(|v| detector.push(v))
            .filter(|e| matches!(e, TurnEvent::TurnEnded { .. }))
            .count();
        assert_eq!(
            ends, 0,
            "a 200 ms pause inside speech is not the end of the turn"
        );

        let mut detector = TurnDetector::new(TurnConfig::from_silence_ms(400));
        let events: Vec<_> = (0..40).map(|f| detector.push(f < 3)).collect();
        assert!(events.contains(&TurnEvent::Discarded));
        assert!(!events.contains(&TurnEvent::SpeechStarted));
    }
}
