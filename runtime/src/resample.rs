//! Streaming sample-rate conversion between telephone (8 kHz), STT (16 kHz) and TTS (24 kHz)
//! rates.
//!
//! A small polyphase windowed-sinc resampler written by hand instead of `rubato`: we only
//! need fixed rational ratios (2, 3, 1/2, 1/3, 2/3 …), must process 20 ms blocks of `i16`
//! without allocating per block, and keep the per-call state tiny (a few dozen samples of
//! history) so a pod holds thousands of calls. `rubato`'s FFT/sinc resamplers target
//! arbitrary and changing ratios with larger fixed-size chunks and float buffers.

use std::f32::consts::PI;

/// Taps of each polyphase branch per unit of the larger of the two factors.
const TAPS_PER_FACTOR: usize = 16;
/// Cut-off as a fraction of the lower Nyquist frequency: a little margin for the transition band.
const CUTOFF_FRACTION: f32 = 0.9;

/// Converts a stream of 16-bit samples from one rate to another, block by block.
#[derive(Clone, Debug)]
pub struct Resampler {
    up: usize,
    down: usize,
    taps: usize,
    /// Phase-major coefficients: `coeffs[phase * taps + k]`.
    coeffs: Vec<f32>,
    /// The last `taps - 1` input samples followed by the current block (scratch, reused).
    buffer: Vec<f32>,
    /// Position of the next output in the up-sampled domain, relative to the next block's start.
    next_position: usize,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Resampler {
    /// A resampler from `from_hz` to `to_hz` (both non-zero).
    pub fn new(from_hz: u32, to_hz: u32) -> Self {
        let from = from_hz.max(1) as usize;
        let to = to_hz.max(1) as usize;
        let divisor = gcd(from, to);
        let (up, down) = (to / divisor, from / divisor);
        let taps = TAPS_PER_FACTOR * up.max(down).div_ceil(up);
        let coeffs = design_polyphase(up, down, taps);
        Self {
            up,
            down,
            taps,
            coeffs,
            buffer: vec![0.0; taps - 1],
            next_position: 0,
        }
    }

    /// True when input and output rates are equal (the resampler copies).
    pub fn is_identity(&self) -> bool {
        self.up == 1 && self.down == 1
    }

    /// Resamples one block, appending the output samples to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if self.is_identity() {
            out.extend_from_slice(input);
            return;
        }
        let history = self.taps - 1;
        self.buffer.truncate(history);
        self.buffer.extend(input.iter().map(|s| f32::from(*s)));
        let mut position = self.next_position;
        let limit = input.len() * self.up;
        out.reserve(limit / self.down + 1);
        while position < limit {
            let index = position / self.up + history;
            let phase = position % self.up;
            let branch = &self.coeffs[phase * self.taps..(phase + 1) * self.taps];
            let window = &self.buffer[index + 1 - self.taps..=index];
            // `window` runs oldest → newest; branch[k] weights the sample k steps back.
            let acc: f32 = branch
                .iter()
                .zip(window.iter().rev())
                .map(|(c, x)| c * x)
                .sum();
            out.push(acc.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16);
            position += self.down;
        }
        self.next_position = position - limit;
        let keep_from = self.buffer.len() - history;
        self.buffer.copy_within(keep_from.., 0);
        self.buffer.truncate(history);
    }

    /// Convenience: resamples a whole buffer in one go.
    pub fn process_all(from_hz: u32, to_hz: u32, input: &[i16]) -> Vec<i16> {
        let mut resampler = Self::new(from_hz, to_hz);
        let mut out = Vec::new();
        resampler.process(input, &mut out);
        out
    }
}

/// Blackman-windowed sinc low-pass at the up-sampled rate, split into `up` branches.
fn design_polyphase(up: usize, down: usize, taps: usize) -> Vec<f32> {
    let length = up * taps;
    // Normalised to the up-sampled rate: the lower of the two Nyquist limits.
    let cutoff = CUTOFF_FRACTION * 0.5 / up.max(down) as f32;
    let centre = (length - 1) as f32 / 2.0;
    let prototype: Vec<f32> = (0..length)
        .map(|m| {
            let x = m as f32 - centre;
            let sinc = if x.abs() < 1e-6 {
                2.0 * cutoff
            } else {
                (2.0 * PI * cutoff * x).sin() / (PI * x)
            };
            let w = 2.0 * PI * m as f32 / (length - 1) as f32;
            let blackman = 0.42 - 0.5 * w.cos() + 0.08 * (2.0 * w).cos();
            sinc * blackman
        })
        .collect();
    // Each branch gets unit DC gain, which also restores the factor `up` lost to zero-stuffing.
    let mut coeffs = vec![0.0; length];
    for phase in 0..up {
        let branch: Vec<f32> = (0..taps).map(|k| prototype[phase + k * up]).collect();
        let sum: f32 = branch.iter().sum();
        for (k, c) in branch.iter().enumerate() {
            coeffs[phase * taps + k] = if sum.abs() > 1e-9 { c / sum } else { *c };
        }
    }
    coeffs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, rate: f32, len: usize, amplitude: f32) -> Vec<i16> {
        (0..len)
            .map(|n| (amplitude * (2.0 * PI * hz * n as f32 / rate).sin()) as i16)
            .collect()
    }

    fn rms(samples: &[i16]) -> f32 {
        let sum: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
        (sum / samples.len().max(1) as f64).sqrt() as f32
    }

    /// Amplitude of the `hz` component (single-bin DFT).
    fn component(samples: &[i16], hz: f32, rate: f32) -> f32 {
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for (n, s) in samples.iter().enumerate() {
            let angle = 2.0 * std::f64::consts::PI * f64::from(hz) * n as f64 / f64::from(rate);
            re += f64::from(*s) * angle.cos();
            im += f64::from(*s) * angle.sin();
        }
        (2.0 * (re * re + im * im).sqrt() / samples.len() as f64) as f32
    }

    #[test]
    fn output_length_follows_the_ratio() {
        assert_eq!(Resampler::process_all(8000, 16000, &[0; 160]).len(), 320);
        assert_eq!(Resampler::process_all(16000, 8000, &[0; 320]).len(), 160);
        assert_eq!(Resampler::process_all(24000, 8000, &[0; 480]).len(), 160);
        assert_eq!(Resampler::process_all(8000, 24000, &[0; 160]).len(), 480);
        assert_eq!(Resampler::process_all(22050, 8000, &[0; 2205]).len(), 800);
    }

    #[test]
    fn in_band_tone_keeps_frequency_and_level() {
        for (from, to) in [(8000, 16000), (16000, 8000), (24000, 8000), (8000, 24000)] {
            let input = tone(1000.0, from as f32, from as usize / 2, 10000.0);
            let output = Resampler::process_all(from, to, &input);
            // Skip the filter's start-up transient.
            let steady = &output[output.len() / 4..];
            let level = component(steady, 1000.0, to as f32);
            assert!((level - 10000.0).abs() < 500.0, "{from}->{to}: {level}");
        }
    }

    #[test]
    fn decimation_removes_what_would_alias() {
        // 6 kHz cannot exist at 8 kHz: it must be filtered out, not folded to 2 kHz.
        let input = tone(6000.0, 16000.0, 8000, 10000.0);
        let output = Resampler::process_all(16000, 8000, &input);
        assert!(rms(&output[100..]) < 300.0, "{}", rms(&output[100..]));
        let input = tone(7000.0, 24000.0, 12000, 10000.0);
        let output = Resampler::process_all(24000, 8000, &input);
        assert!(rms(&output[100..]) < 300.0, "{}", rms(&output[100..]));
    }

    #[test]
    fn block_by_block_equals_one_shot() {
        let input = tone(440.0, 24000.0, 4800, 8000.0);
        let whole = Resampler::process_all(24000, 8000, &input);
        let mut streaming = Resampler::new(24000, 8000);
        let mut out = Vec::new();
        for block in input.chunks(97) {
            streaming.process(block, &mut out);
        }
        assert_eq!(whole, out);
        let mut up = Resampler::new(8000, 16000);
        let mut out = Vec::new();
        for block in input.chunks(160) {
            up.process(block, &mut out);
        }
        assert_eq!(out, Resampler::process_all(8000, 16000, &input));
    }

    #[test]
    fn identity_copies() {
        let input = tone(440.0, 8000.0, 160, 8000.0);
        assert_eq!(Resampler::process_all(8000, 8000, &input), input);
    }
}
