//! The energy VAD: level against an adaptive noise floor, gated by the zero-crossing rate.
//!
//! Cheap (a few hundred operations per 20 ms frame, no state beyond the floor) and the
//! fallback when an agent asks for it; on band-limited 8 kHz telephone audio the decisive
//! signal it uses is level above the line's own noise, so loud non-speech (coughs, music,
//! babble) passes as speech. See the README's turn-taking evaluation.

use super::VoiceActivity;

/// Tunables of [`EnergyVad`].
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
pub struct EnergyVad {
    config: VadConfig,
    noise_floor_db: f32,
}

impl Default for EnergyVad {
    fn default() -> Self {
        Self::new(VadConfig::default())
    }
}

impl EnergyVad {
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

impl VoiceActivity for EnergyVad {
    fn name(&self) -> &'static str {
        "energy"
    }

    fn speech_probability(&mut self, frame: &[i16]) -> f32 {
        if self.is_speech(frame) { 1.0 } else { 0.0 }
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

#[cfg(test)]
mod tests {
    use super::super::FRAME_SAMPLES;
    use super::super::signals::{noise, speech_like};
    use super::*;

    fn decisions(vad: &mut EnergyVad, signal: &[i16]) -> Vec<bool> {
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
        let mut vad = EnergyVad::default();
        let quiet = decisions(&mut vad, &noise(8000, 1, 30.0));
        assert!(share(&quiet) < 0.02, "quiet line: {}", share(&quiet));
        let speech = decisions(&mut vad, &speech_like(8000, 0, 8000.0));
        assert!(share(&speech) > 0.9, "speech: {}", share(&speech));
        let zeros = decisions(&mut vad, &vec![0; 8000]);
        assert!(share(&zeros) == 0.0);
    }

    #[test]
    fn steady_noise_stops_being_speech_once_learnt() {
        let mut vad = EnergyVad::default();
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
}
