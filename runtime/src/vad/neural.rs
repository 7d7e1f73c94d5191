//! The neural VAD: `earshot` (pure Rust, ~40 KiB of bundled weights) on the call's audio
//! upsampled to the 16 kHz it was trained on, listening only to the foreground.
//!
//! earshot scores 16 ms frames of 256 samples; a 20 ms telephone frame becomes 320 samples at
//! 16 kHz, so one or two scores complete per frame and the frame takes the highest of them.
//!
//! A frame is foreground when it stands [`FOREGROUND_MARGIN_DB`] above the line's background
//! (the 10th percentile of the last two seconds' frame levels; before two seconds are heard,
//! the quietest frame so far; a dropout of the line, up to half a second far below the
//! background, is left out of it) and above an absolute floor.
//! Background frames score 0: six talkers in a café or music on the line are speech-like to
//! any frame classifier, but they are steady, while a caller talking to the agent stands out
//! from them. The network only runs on the foreground and a short hangover after it (its state
//! is reset and primed with the last frames when it starts again), which keeps its cost to a
//! fraction of the stream: a quiet line costs a level measurement per frame.
//!
//! Soft talkers are lifted by up to 9 dB toward -30 dBFS before the
//! network hears them (the gain follows a peak-hold of the foreground's level, ramped between
//! frames): the network believes quiet speech less than the same speech louder.
//!
//! The network's window makes it hear a word for about [`TRAILING_FRAMES`] after it ends; the
//! end-of-turn wait takes that off, so it is the caller's silence.

use earshot::Detector;

use super::energy::level_dbfs;
use super::{FRAME_SAMPLES, VoiceActivity};
use crate::resample::Resampler;

/// earshot's frame: 16 ms at 16 kHz.
const EARSHOT_FRAME: usize = 256;
/// How far (dB) above the background a frame must be to be heard.
pub const FOREGROUND_MARGIN_DB: f32 = 6.0;
/// Frames quieter than this (dBFS) are never speech.
pub const ABSOLUTE_FLOOR_DB: f32 = -60.0;
/// Frame levels the background is estimated from (2 s).
const BACKGROUND_FRAMES: usize = 100;
/// Frames heard before the quietest of them is taken for the background (at the start).
const MIN_HEARD_FRAMES: usize = 10;
/// The background is re-estimated every this many frames.
const BACKGROUND_EVERY: u32 = 5;
/// A frame this far (dB) below the background is a dropout of the line, not its background.
const DROPOUT_DB: f32 = 12.0;
/// Longest dropout (frames, 500 ms) kept out of the background estimate.
const MAX_DROPOUT_FRAMES: u32 = 25;
/// The network keeps running this many frames after the last foreground frame (300 ms), so
/// pauses between words do not cost it its context.
const HANGOVER_FRAMES: u32 = 15;
/// Frames of 8 kHz audio replayed into a restarted network (its 48 ms window and context).
const PRIME_FRAMES: usize = 5;
/// Frames the network keeps scoring speech after the last word ends (60 ms): each score
/// covers a 48 ms window of 16 ms frames (and the upsampler delays a few samples), so the
/// first 20 ms frames after a word still hold some of it. The end-of-turn wait is shortened by
/// this ([`VoiceActivity::trailing_frames`]) so that it is the caller's silence: uncompensated,
/// the neural VAD ended turns about 50 ms later than the energy VAD with the same 700 ms wait
/// on the evaluation corpus (p50 701 vs 649 ms on seed 1, 700 vs 671 on seed 2), compensated
/// 641 and 640 ms.
pub const TRAILING_FRAMES: u32 = 3;
/// Soft talkers are lifted toward this level (dBFS) before the network hears them: it
/// believes quiet speech less than the same speech louder.
const GAIN_TARGET_DB: f32 = -30.0;
/// The most they are lifted (dB), so a line's hiss is never made speech-loud.
const MAX_GAIN_DB: f32 = 9.0;
/// How fast (dB per frame) the level the gain follows falls after the loudest frame: it
/// holds through a word, so the gain does not pump the syllables' dynamics flat.
const ENVELOPE_RELEASE_DB: f32 = 0.5;

/// The neural detector of one stream (about 10 KiB of state).
pub struct NeuralVad {
    detector: Box<Detector>,
    upsampler: Resampler,
    pending: Vec<i16>,
    /// The last frames at 8 kHz, to prime a restarted network.
    recent: Vec<i16>,
    /// The last frames' levels (the first `heard` of them, until two seconds are heard).
    levels: [f32; BACKGROUND_FRAMES],
    next_level: usize,
    /// Frames heard so far, up to [`BACKGROUND_FRAMES`].
    heard: usize,
    since_estimate: u32,
    background_db: f32,
    /// Frames in a row far below the background (a dropout while short).
    dropout_run: u32,
    /// Frames since the last foreground frame (the network runs while this is short).
    quiet_run: u32,
    running: bool,
    /// Peak-hold level of the foreground (dBFS) the soft-talker gain follows.
    envelope_db: f32,
    /// Gain (linear) applied to the previous frame; the next ramps from it.
    gain: f32,
    /// Scratch: the frame with the gain applied.
    lifted: Vec<i16>,
}

impl std::fmt::Debug for NeuralVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeuralVad")
            .field("background_db", &self.background_db)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl Default for NeuralVad {
    fn default() -> Self {
        Self::new()
    }
}

impl NeuralVad {
    /// A detector for a new stream.
    pub fn new() -> Self {
        Self {
            detector: Detector::default_boxed(),
            upsampler: Resampler::new(8000, 16_000),
            pending: Vec::with_capacity(2 * EARSHOT_FRAME),
            recent: Vec::with_capacity(PRIME_FRAMES * 160),
            levels: [-90.0; BACKGROUND_FRAMES],
            next_level: 0,
            heard: 0,
            since_estimate: 0,
            background_db: -90.0,
            dropout_run: 0,
            quiet_run: HANGOVER_FRAMES,
            running: false,
            envelope_db: -90.0,
            gain: 1.0,
            lifted: Vec::with_capacity(FRAME_SAMPLES),
        }
    }

    /// The soft-talker gain (linear) for the current envelope: toward [`GAIN_TARGET_DB`], at
    /// most [`MAX_GAIN_DB`].
    fn gain_for_envelope(&self) -> f32 {
        let db = (GAIN_TARGET_DB - self.envelope_db).clamp(0.0, MAX_GAIN_DB);
        10f32.powf(db / 20.0)
    }

    /// Lifts `frame` into `self.lifted` by the soft-talker gain, ramped from the previous
    /// frame's gain so the change makes no click.
    fn lift(&mut self, frame: &[i16]) {
        let gain = self.gain_for_envelope();
        let start = self.gain;
        let step = (gain - start) / frame.len().max(1) as f32;
        self.lifted.clear();
        self.lifted.extend(frame.iter().enumerate().map(|(n, s)| {
            (f32::from(*s) * (start + step * (n + 1) as f32)).clamp(-32767.0, 32767.0) as i16
        }));
        self.gain = gain;
    }

    /// The current background estimate (dBFS).
    pub fn background_db(&self) -> f32 {
        self.background_db
    }

    /// True while the network is running.
    pub fn is_running(&self) -> bool {
        self.running
    }

    fn track_background(&mut self, level: f32) {
        if self.heard == BACKGROUND_FRAMES && level < self.background_db - DROPOUT_DB {
            // A line that drops out for a moment is not quieter: were its frames counted,
            // the next two seconds' hiss and crackle would stand out as foreground. Once it
            // stays down longer than a dropout, the background follows it down.
            self.dropout_run += 1;
            if self.dropout_run <= MAX_DROPOUT_FRAMES {
                return;
            }
        } else {
            self.dropout_run = 0;
        }
        self.levels[self.next_level] = level;
        self.next_level = (self.next_level + 1) % BACKGROUND_FRAMES;
        self.heard = (self.heard + 1).min(BACKGROUND_FRAMES);
        self.since_estimate += 1;
        if self.since_estimate >= BACKGROUND_EVERY {
            self.since_estimate = 0;
            self.background_db = if self.heard == BACKGROUND_FRAMES {
                let mut sorted = self.levels;
                let (_, tenth, _) =
                    sorted.select_nth_unstable_by(BACKGROUND_FRAMES / 10, f32::total_cmp);
                *tenth
            } else if self.heard >= MIN_HEARD_FRAMES {
                // Until two seconds are heard, the quietest frame so far: the line is not
                // silent just because it has not been heard long (noise from the first frame
                // is background), and a caller who speaks first still stands above the
                // pauses of their own speech.
                self.levels[..self.heard]
                    .iter()
                    .copied()
                    .fold(f32::INFINITY, f32::min)
            } else {
                -90.0
            };
        }
    }

    /// Scores `frame` with the network; the highest score of the earshot frames it completes.
    fn score(&mut self, frame: &[i16]) -> f32 {
        self.upsampler.process(frame, &mut self.pending);
        let mut best = 0.0f32;
        let mut start = 0;
        while self.pending.len() - start >= EARSHOT_FRAME {
            let score = self
                .detector
                .predict_i16(&self.pending[start..start + EARSHOT_FRAME]);
            best = best.max(score);
            start += EARSHOT_FRAME;
        }
        self.pending.drain(..start);
        best
    }

    fn remember(&mut self, frame: &[i16]) {
        self.recent.extend_from_slice(frame);
        let excess = self
            .recent
            .len()
            .saturating_sub(PRIME_FRAMES * FRAME_SAMPLES);
        self.recent.drain(..excess);
    }
}

impl VoiceActivity for NeuralVad {
    fn name(&self) -> &'static str {
        "neural"
    }

    fn trailing_frames(&self) -> u32 {
        TRAILING_FRAMES
    }

    fn speech_probability(&mut self, frame: &[i16]) -> f32 {
        let level = level_dbfs(frame);
        // Judged against the background before this frame joins it.
        let foreground =
            level > ABSOLUTE_FLOOR_DB && level > self.background_db + FOREGROUND_MARGIN_DB;
        self.track_background(level);
        self.envelope_db = if foreground {
            level.max(self.envelope_db - ENVELOPE_RELEASE_DB)
        } else {
            self.envelope_db - ENVELOPE_RELEASE_DB
        }
        .max(-90.0);
        self.quiet_run = if foreground { 0 } else { self.quiet_run + 1 };
        if self.quiet_run >= HANGOVER_FRAMES {
            self.running = false;
            self.remember(frame);
            return 0.0;
        }
        if !self.running {
            // Start from a clean state primed with the audio just before this frame, at the
            // gain this frame gets.
            self.detector.reset();
            self.upsampler = Resampler::new(8000, 16_000);
            self.pending.clear();
            self.gain = self.gain_for_envelope();
            let recent = std::mem::take(&mut self.recent);
            for previous in recent.chunks(FRAME_SAMPLES) {
                self.lift(previous);
                let lifted = std::mem::take(&mut self.lifted);
                self.score(&lifted);
                self.lifted = lifted;
            }
            self.recent = recent;
            self.running = true;
        }
        self.remember(frame);
        self.lift(frame);
        let lifted = std::mem::take(&mut self.lifted);
        let score = self.score(&lifted);
        self.lifted = lifted;
        if foreground { score } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::super::signals::{noise, speech_like};
    use super::*;

    fn probabilities(vad: &mut NeuralVad, signal: &[i16]) -> Vec<f32> {
        signal
            .chunks(160)
            .map(|frame| vad.speech_probability(frame))
            .collect()
    }

    #[test]
    fn a_quiet_line_costs_no_network_and_speech_wakes_it() {
        let mut vad = NeuralVad::new();
        let quiet = probabilities(&mut vad, &noise(160 * 100, 1, 30.0));
        assert!(quiet.iter().all(|p| *p == 0.0));
        assert!(!vad.is_running());
        let speech = probabilities(&mut vad, &speech_like(160 * 50, 0, 8000.0));
        assert!(vad.is_running());
        let loud = speech.iter().filter(|p| **p >= 0.5).count();
        assert!(loud > 35, "{loud} of 50 frames");
        assert!(vad.pending.len() < EARSHOT_FRAME);
        // Back to the quiet line: after the hangover the network stops again.
        probabilities(&mut vad, &noise(160 * 20, 2, 30.0));
        assert!(!vad.is_running());
    }

    #[test]
    fn soft_talkers_are_lifted_by_at_most_9_db_and_loud_ones_not_at_all() {
        let mut vad = NeuralVad::new();
        let soft = speech_like(160 * 30, 0, 100.0);
        probabilities(&mut vad, &soft);
        let level = level_dbfs(&soft[160 * 29..]);
        assert!(level < -45.0, "{level}");
        vad.lift(&soft[160 * 29..]);
        let lifted = level_dbfs(&vad.lifted);
        assert!(
            (lifted - level - MAX_GAIN_DB).abs() < 0.5,
            "{level} -> {lifted}"
        );
        let mut vad = NeuralVad::new();
        let loud = speech_like(160 * 30, 0, 8000.0);
        probabilities(&mut vad, &loud);
        vad.lift(&loud[160 * 29..]);
        assert_eq!(vad.lifted, loud[160 * 29..].to_vec());
    }

    #[test]
    fn noise_from_the_first_frame_is_background_within_a_fraction_of_a_second() {
        let mut vad = NeuralVad::new();
        // Steady noise at about -40 dBFS from the start of the stream.
        let noisy = probabilities(&mut vad, &noise(160 * 50, 5, 400.0));
        assert!(
            (-46.0..-36.0).contains(&vad.background_db()),
            "{}",
            vad.background_db()
        );
        assert!(noisy[15..].iter().all(|p| *p == 0.0), "{noisy:?}");
        assert!(!vad.is_running());
    }

    #[test]
    fn a_dropout_leaves_the_background_where_it_was_and_a_lasting_drop_moves_it() {
        let mut vad = NeuralVad::new();
        // About -30 dBFS of line noise for 3 s, then a 400 ms dropout (26 dB down) …
        probabilities(&mut vad, &noise(160 * 150, 3, 1000.0));
        let before = vad.background_db();
        probabilities(&mut vad, &noise(160 * 20, 4, 50.0));
        assert_eq!(vad.background_db(), before);
        // … and the noise back: it is still background, not foreground the network hears.
        let after = probabilities(&mut vad, &noise(160 * 50, 5, 1000.0));
        assert!(after.iter().all(|p| *p == 0.0), "{after:?}");
        assert!((vad.background_db() - before).abs() < 2.0);
        // A line that stays quieter takes its new background within about 1 s.
        probabilities(&mut vad, &noise(160 * 50, 6, 50.0));
        assert!(
            vad.background_db() < before - 20.0,
            "{}",
            vad.background_db()
        );
    }

    #[test]
    fn the_network_is_said_to_trail_by_three_frames_the_energy_vad_not_at_all() {
        assert_eq!(NeuralVad::new().trailing_frames(), 3);
        assert_eq!(super::super::EnergyVad::default().trailing_frames(), 0);
    }

    #[test]
    fn steady_sound_becomes_background() {
        let mut vad = NeuralVad::new();
        // Loud steady noise (about -30 dBFS): foreground at first, background within 2 s.
        probabilities(&mut vad, &noise(160 * 150, 3, 1000.0));
        assert!(
            (-34.0..-26.0).contains(&vad.background_db()),
            "{}",
            vad.background_db()
        );
        let later = probabilities(&mut vad, &noise(160 * 50, 4, 1000.0));
        assert!(later.iter().all(|p| *p == 0.0));
        assert!(!vad.is_running());
    }
}
