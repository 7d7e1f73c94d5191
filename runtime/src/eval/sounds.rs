//! Non-speech sounds of the evaluation corpus, synthesised from a seeded generator at 8 kHz
//! (samples in −1…1): coughs, clicks and knocks, steady noise, music-like tones, line noise.
//!
//! They are caricatures, not recordings, built to carry what makes each class hard for a
//! voice-activity detector: coughs are loud broadband bursts with a voiced onset, clicks are
//! short and sharp, music is tonal and sustained like vowels, line noise mixes hum, hiss,
//! crackle and bursts of static.

use std::f32::consts::PI;

use fastrand::Rng;

/// Sample rate of everything here.
pub const RATE: f32 = 8000.0;

/// Roughly Gaussian noise (sum of four uniforms), unit variance.
pub fn white(rng: &mut Rng, samples: usize) -> Vec<f32> {
    (0..samples)
        .map(|_| {
            let sum: f32 = (0..4).map(|_| rng.f32() * 2.0 - 1.0).sum();
            sum * 0.866 // 1 / sqrt(4/3)
        })
        .collect()
}

/// Pink (1/f) noise: white noise through Paul Kellet's economy filter.
pub fn pink(rng: &mut Rng, samples: usize) -> Vec<f32> {
    let (mut b0, mut b1, mut b2) = (0.0f32, 0.0f32, 0.0f32);
    white(rng, samples)
        .into_iter()
        .map(|w| {
            b0 = 0.99765 * b0 + w * 0.0990460;
            b1 = 0.96300 * b1 + w * 0.2965164;
            b2 = 0.57000 * b2 + w * 1.0526913;
            (b0 + b1 + b2 + w * 0.1848) * 0.3
        })
        .collect()
}

/// Brown (1/f²) noise: leaky integration of white noise.
pub fn brown(rng: &mut Rng, samples: usize) -> Vec<f32> {
    let mut y = 0.0f32;
    white(rng, samples)
        .into_iter()
        .map(|w| {
            y = 0.995 * y + 0.1 * w;
            y
        })
        .collect()
}

/// A two-pole resonator (band-pass around `centre` Hz with `bandwidth` Hz).
struct Resonator {
    a1: f32,
    a2: f32,
    gain: f32,
    y1: f32,
    y2: f32,
}

impl Resonator {
    fn new(centre: f32, bandwidth: f32) -> Self {
        let r = (-PI * bandwidth / RATE).exp();
        let theta = 2.0 * PI * centre / RATE;
        Self {
            a1: 2.0 * r * theta.cos(),
            a2: -r * r,
            gain: 1.0 - r,
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn process(&mut self, x: f32) -> f32 {
        let y = self.gain * x + self.a1 * self.y1 + self.a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Scales `samples` so that their RMS is `dbfs` (relative to full scale 1.0).
pub fn set_rms(samples: &mut [f32], dbfs: f32) {
    let rms = rms(samples);
    if rms > 0.0 {
        let gain = 10f32.powf(dbfs / 20.0) / rms;
        samples.iter_mut().for_each(|s| *s *= gain);
    }
}

/// Root mean square of `samples`.
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

/// Adds `sound` into `into` starting at `at` (clipped at the end).
pub fn mix_at(into: &mut [f32], sound: &[f32], at: usize) {
    for (dst, src) in into.iter_mut().skip(at).zip(sound) {
        *dst += *src;
    }
}

/// One cough (or a double cough): an explosive broadband burst with a short voiced onset,
/// shaped by two throat resonances, 0.2–0.5 s, peak near `peak`.
pub fn cough(rng: &mut Rng, peak: f32) -> Vec<f32> {
    let parts = if rng.f32() < 0.35 { 2 } else { 1 };
    let mut out = Vec::new();
    for part in 0..parts {
        let length = (RATE * (0.18 + 0.22 * rng.f32())) as usize;
        let mut low = Resonator::new(400.0 + 500.0 * rng.f32(), 350.0);
        let mut high = Resonator::new(1500.0 + 1200.0 * rng.f32(), 700.0);
        let pitch = 180.0 + 120.0 * rng.f32();
        let decay = 0.05 + 0.07 * rng.f32();
        let noise = white(rng, length);
        let mut burst: Vec<f32> = noise
            .iter()
            .enumerate()
            .map(|(n, w)| {
                let t = n as f32 / RATE;
                let attack = (t / 0.008).min(1.0);
                let envelope = attack * (-t / decay).exp();
                // The glottis closes hard at the start of a cough: a few voiced periods.
                let voiced = if t < 0.06 {
                    (2.0 * PI * pitch * t).sin().max(0.0).powi(3) * 2.0
                } else {
                    0.0
                };
                let x = w + voiced;
                envelope * (low.process(x) * 3.0 + high.process(x) * 2.0)
            })
            .collect();
        let max = burst.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        if max > 0.0 {
            burst.iter_mut().for_each(|s| *s *= peak / max);
        }
        if part > 0 {
            out.extend(std::iter::repeat_n(0.0, (RATE * 0.12) as usize));
        }
        out.extend(burst);
    }
    out
}

/// A click: a 1–4 ms decaying ring at 1–3 kHz.
pub fn click(rng: &mut Rng, peak: f32) -> Vec<f32> {
    let length = (RATE * (0.001 + 0.003 * rng.f32())) as usize + 8;
    let freq = 1000.0 + 2000.0 * rng.f32();
    (0..length)
        .map(|n| {
            let t = n as f32 / RATE;
            peak * (-t / 0.0015).exp() * (2.0 * PI * freq * t).sin()
        })
        .collect()
}

/// A knock on a door or desk: a 30 ms low thud.
pub fn knock(rng: &mut Rng, peak: f32) -> Vec<f32> {
    let length = (RATE * 0.04) as usize;
    let freq = 180.0 + 200.0 * rng.f32();
    let noise = white(rng, length);
    (0..length)
        .map(|n| {
            let t = n as f32 / RATE;
            peak * (-t / 0.012).exp() * ((2.0 * PI * freq * t).sin() + 0.3 * noise[n])
        })
        .collect()
}

/// A run of keyboard clicks, `count` of them 80–220 ms apart.
pub fn typing(rng: &mut Rng, count: usize, peak: f32) -> Vec<f32> {
    let mut out = Vec::new();
    for _ in 0..count {
        let level = peak * (0.6 + 0.4 * rng.f32());
        out.extend(click(rng, level));
        let gap = (RATE * (0.08 + 0.14 * rng.f32())) as usize;
        out.extend(std::iter::repeat_n(0.0, gap));
    }
    out
}

/// Music-like tones: a chord progression of plucked notes with harmonics, a sustained
/// melody with vibrato (tonal and steady, like a held vowel) and, with `drums`, a beat.
pub fn music(rng: &mut Rng, seconds: f32, drums: bool) -> Vec<f32> {
    let samples = (RATE * seconds) as usize;
    let mut out = vec![0.0f32; samples];
    // I–V–vi–IV in a random key, one chord per beat pair.
    let root = 196.0 * 2f32.powf(rng.usize(0..7) as f32 / 12.0);
    let progression: [[i32; 3]; 4] = [[0, 4, 7], [7, 11, 14], [9, 12, 16], [5, 9, 12]];
    let beat = 0.45 + 0.15 * rng.f32();
    let mut t0 = 0.0;
    let mut bar = 0;
    while t0 < seconds {
        let chord = progression[bar % 4];
        for (voice, semitones) in chord.iter().enumerate() {
            let f = root * 2f32.powf(*semitones as f32 / 12.0);
            let note = plucked(f, beat * 2.0, 0.25 / (voice as f32 + 1.0));
            mix_at(&mut out, &note, (t0 * RATE) as usize);
        }
        // Melody: two sustained notes per chord.
        for half in 0..2 {
            let step = [0, 2, 4, 7, 9, 12][rng.usize(0..6)];
            let f = root * 2.0 * 2f32.powf((chord[0] + step) as f32 / 12.0);
            let note = sustained(f, beat * 0.95, 0.3);
            mix_at(&mut out, &note, ((t0 + beat * half as f32) * RATE) as usize);
        }
        if drums {
            for hit in 0..2 {
                let kick = knock(rng, 0.6);
                mix_at(&mut out, &kick, ((t0 + beat * hit as f32) * RATE) as usize);
                let hat: Vec<f32> = white(rng, 300)
                    .into_iter()
                    .enumerate()
                    .map(|(n, w)| 0.15 * w * (-(n as f32) / 60.0).exp())
                    .collect();
                let at = t0 + beat * (hit as f32 + 0.5);
                mix_at(&mut out, &hat, (at * RATE) as usize);
            }
        }
        t0 += beat * 2.0;
        bar += 1;
    }
    out
}

fn plucked(f: f32, seconds: f32, level: f32) -> Vec<f32> {
    (0..(RATE * seconds) as usize)
        .map(|n| {
            let t = n as f32 / RATE;
            let envelope = (t / 0.005).min(1.0) * (-t / 0.5).exp();
            let tone: f32 = (1..=6)
                .filter(|h| f * *h as f32 * 1.1 < RATE / 2.0)
                .map(|h| (2.0 * PI * f * h as f32 * t).sin() / h as f32)
                .sum();
            level * envelope * tone
        })
        .collect()
}

fn sustained(f: f32, seconds: f32, level: f32) -> Vec<f32> {
    let mut phase = 0.0f32;
    (0..(RATE * seconds) as usize)
        .map(|n| {
            let t = n as f32 / RATE;
            let envelope = (t / 0.04).min(1.0) * ((seconds - t) / 0.05).clamp(0.0, 1.0);
            let vibrato = 1.0 + 0.006 * (2.0 * PI * 5.5 * t).sin();
            phase += 2.0 * PI * f * vibrato / RATE;
            let tone: f32 = (1..=5)
                .map(|h| (phase * h as f32).sin() * 0.7f32.powi(h - 1))
                .sum();
            level * envelope * tone
        })
        .collect()
}

/// A bad line: mains buzz (harmonics of `mains` Hz), hiss, crackle, and now and then a
/// burst of static or a dropout.
pub fn line_noise(rng: &mut Rng, seconds: f32, mains: f32) -> Vec<f32> {
    let samples = (RATE * seconds) as usize;
    let hiss = white(rng, samples);
    let mut out: Vec<f32> = (0..samples)
        .map(|n| {
            let t = n as f32 / RATE;
            let buzz: f32 = (1..=9)
                .step_by(2)
                .map(|h| (2.0 * PI * mains * h as f32 * t).sin() / h as f32)
                .sum();
            0.01 * buzz + 0.004 * hiss[n]
        })
        .collect();
    // Crackle: sparse pops.
    for _ in 0..(seconds * 6.0) as usize {
        let at = rng.usize(0..samples);
        let level = 0.05 + 0.2 * rng.f32();
        let pop = click(rng, level);
        mix_at(&mut out, &pop, at);
    }
    // Static bursts and dropouts, about one every three seconds.
    for _ in 0..(seconds / 3.0) as usize {
        let at = rng.usize(0..samples);
        let length = (RATE * (0.1 + 0.4 * rng.f32())) as usize;
        if rng.bool() {
            let burst = white(rng, length);
            let level = 0.03 + 0.08 * rng.f32();
            for (i, s) in out.iter_mut().skip(at).take(length).enumerate() {
                let edge = (i.min(length - i) as f32 / 80.0).min(1.0);
                *s += level * edge * burst[i];
            }
        } else {
            out.iter_mut()
                .skip(at)
                .take(length)
                .for_each(|s| *s *= 0.05);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sounds_are_deterministic_for_a_seed_and_differ_between_seeds() {
        let make = |seed| {
            let mut rng = Rng::with_seed(seed);
            let mut all = cough(&mut rng, 0.5);
            all.extend(music(&mut rng, 1.0, true));
            all.extend(line_noise(&mut rng, 1.0, 60.0));
            all
        };
        assert_eq!(make(7), make(7));
        assert_ne!(make(7), make(8));
    }

    #[test]
    fn levels_are_set_in_dbfs() {
        let mut rng = Rng::with_seed(1);
        let mut noise = pink(&mut rng, 8000);
        set_rms(&mut noise, -30.0);
        let db = 20.0 * rms(&noise).log10();
        assert!((db + 30.0).abs() < 0.01, "{db}");
        let cough = cough(&mut rng, 0.5);
        let peak = cough.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((peak - 0.5).abs() < 1e-3);
        assert!((1600..=8000).contains(&cough.len()), "{}", cough.len());
    }
}
