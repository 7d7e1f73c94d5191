//! Generators of test and benchmark signals (speech-like and noise), shared with the bench.

use std::f32::consts::PI;

/// A voiced, speech-like signal at roughly `level` peak amplitude: a glottal harmonic series
/// around 120 Hz with slow intonation and a little vibrato, shaped by the formants of a vowel
/// that changes with each syllable, at a 4 Hz syllable rate.
pub fn speech_like(samples: usize, offset: usize, level: f32) -> Vec<i16> {
    // First and second formants (Hz) of /a/, /i/, /u/, /e/, /o/.
    const VOWELS: [(f32, f32); 5] = [
        (730.0, 1090.0),
        (300.0, 2200.0),
        (330.0, 900.0),
        (530.0, 1840.0),
        (570.0, 840.0),
    ];
    let (intonation, vibrato) = (2.0 * PI * 0.7, 2.0 * PI * 5.5);
    // Every vowel as loud as the signal's original fixed vowel.
    let energy = |f1: f32, w1: f32, f2: f32, w2: f32| -> f32 {
        (1..=25)
            .map(|h| {
                let f = 120.0 * h as f32;
                (formant(f, f1, w1) + 0.7 * formant(f, f2, w2)).powi(2)
            })
            .sum::<f32>()
            .sqrt()
    };
    let reference = energy(700.0, 150.0, 1200.0, 200.0);
    let norms: Vec<f32> = VOWELS
        .iter()
        .map(|(f1, f2)| reference / energy(*f1, 120.0, *f2, 180.0))
        .collect();
    (offset..offset + samples)
        .map(|n| {
            let t = n as f32 / 8000.0;
            // f0(t) = 120 (1 + 0.08 sin(wt) + 0.02 sin(vt)); its phase in closed form.
            let f0 = 120.0 * (1.0 + 0.08 * (intonation * t).sin() + 0.02 * (vibrato * t).sin());
            let phase = 2.0
                * PI
                * 120.0
                * (t + 0.08 * (1.0 - (intonation * t).cos()) / intonation
                    + 0.02 * (1.0 - (vibrato * t).cos()) / vibrato);
            let vowel = (t * 4.0) as usize % VOWELS.len();
            let (f1, f2) = VOWELS[vowel];
            let mut v = 0.0;
            for harmonic in 1..=25 {
                let f = f0 * harmonic as f32;
                if f > 3800.0 {
                    break;
                }
                let gain = formant(f, f1, 120.0) + 0.7 * formant(f, f2, 180.0);
                v += gain * (phase * harmonic as f32).sin();
            }
            let syllables = 0.6 + 0.4 * (2.0 * PI * 4.0 * t).sin();
            (v * norms[vowel] * syllables * level / 2.0).clamp(-32767.0, 32767.0) as i16
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
