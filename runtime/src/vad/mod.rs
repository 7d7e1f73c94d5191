//! Voice-activity detection: how likely is this 20 ms frame of 8 kHz caller audio speech?
//!
//! Two detectors behind one trait, chosen per agent ([`VadKind`]):
//! - [`NeuralVad`]: `earshot`'s small recurrent network (pure Rust, weights bundled, no model
//!   download), which tells speech from coughs, music and line noise; the default.
//! - [`EnergyVad`]: level above an adaptive noise floor; cheaper, and the fallback.
//!
//! Turn-taking on top of the frame decisions lives in [`crate::turn`]. The README's
//! turn-taking section has the evaluation that chose the default.

pub mod energy;
pub mod neural;
pub mod signals;

pub use energy::{EnergyVad, VadConfig, level_dbfs, zero_crossing_rate};
pub use neural::NeuralVad;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Duration of one frame.
pub const FRAME_MS: u32 = 20;

/// A frame-by-frame speech classifier of one audio stream (it keeps state between frames).
pub trait VoiceActivity: Send + std::fmt::Debug {
    /// Short name for metrics and reports.
    fn name(&self) -> &'static str;

    /// Probability (0–1) that `frame` (20 ms at 8 kHz) is speech; updates the state.
    fn speech_probability(&mut self, frame: &[i16]) -> f32;

    /// Frames for which the detector keeps calling audio speech after the speech has ended
    /// (how far its view reaches back): a silence it reports began this much earlier on the
    /// line. The end-of-turn wait is shortened by it, so that the wait is the caller's
    /// silence whatever the detector.
    fn trailing_frames(&self) -> u32 {
        0
    }
}

/// Which detector an agent uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VadKind {
    /// [`NeuralVad`].
    #[default]
    Neural,
    /// [`EnergyVad`].
    Energy,
}

impl VadKind {
    /// A fresh detector of this kind for one stream.
    pub fn detector(self) -> Box<dyn VoiceActivity> {
        match self {
            VadKind::Neural => Box::new(NeuralVad::new()),
            VadKind::Energy => Box::new(EnergyVad::default()),
        }
    }

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            VadKind::Neural => "neural",
            VadKind::Energy => "energy",
        }
    }
}
