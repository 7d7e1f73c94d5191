//! WAV in and out: any WAV becomes 8 kHz μ-law frames of 20 ms; the agent's μ-law frames
//! become an 8 kHz 16-bit mono WAV. G.711 and resampling come from the runtime crate, so the
//! simulator and the runtime share one codec.

use std::path::Path;

use switchboard_runtime::codec::G711;
use switchboard_runtime::resample::Resampler;

/// Telephone sample rate.
pub const RATE_HZ: u32 = 8_000;
/// Samples (and μ-law bytes) in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 160;
/// Duration of one frame.
pub const FRAME_MS: u64 = 20;

/// Why audio could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// hound refused the file.
    #[error("WAV file {path}")]
    Wav {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: hound::Error,
    },
    /// The file holds no audio.
    #[error("{0}: the WAV file holds no samples")]
    Empty(String),
}

/// Reads a WAV file (any sample rate, integer or float samples, the first channel) as
/// 16-bit samples at 8 kHz.
pub fn read_wav_8k(path: &Path) -> Result<Vec<i16>, AudioError> {
    let wav_error = |source| AudioError::Wav {
        path: path.display().to_string(),
        source,
    };
    let reader = hound::WavReader::open(path).map_err(wav_error)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let samples = first_channel(reader, spec, channels).map_err(wav_error)?;
    if samples.is_empty() {
        return Err(AudioError::Empty(path.display().to_string()));
    }
    Ok(to_8k(&samples, spec.sample_rate))
}

fn first_channel<R: std::io::Read>(
    reader: hound::WavReader<R>,
    spec: hound::WavSpec,
    channels: usize,
) -> Result<Vec<i16>, hound::Error> {
    match spec.sample_format {
        hound::SampleFormat::Int => {
            let bits = u32::from(spec.bits_per_sample);
            reader
                .into_samples::<i32>()
                .step_by(channels)
                .map(|s| s.map(|s| int_to_i16(s, bits)))
                .collect()
        }
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .step_by(channels)
            .map(|s| s.map(float_to_i16))
            .collect(),
    }
}

/// Scales an integer sample of `bits` bits to 16 bits.
fn int_to_i16(sample: i32, bits: u32) -> i16 {
    let scaled = if bits > 16 {
        sample >> (bits - 16)
    } else {
        sample << (16 - bits)
    };
    scaled.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

fn float_to_i16(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16
}

fn to_8k(samples: &[i16], rate: u32) -> Vec<i16> {
    if rate == RATE_HZ {
        return samples.to_vec();
    }
    // 20 ms of trailing zeros flush the filter's delay, so the end of the speech survives.
    let mut padded = samples.to_vec();
    padded.extend(std::iter::repeat_n(0, (rate / 50) as usize));
    let mut out = Resampler::process_all(rate, RATE_HZ, &padded);
    let expected = (samples.len() as u64 * u64::from(RATE_HZ)).div_ceil(u64::from(rate.max(1)));
    out.truncate(usize::try_from(expected).unwrap_or(usize::MAX));
    out
}

/// `seconds` of a "voiced" caller signal at 8 kHz: harmonics of 180 Hz under a 4 Hz syllable
/// envelope, loud enough for voice-activity detection. What `call` says when no `--audio` file
/// is given, so a simulated call needs nothing but the CLI.
pub fn speech_like(seconds: f64) -> Vec<i16> {
    let samples = (seconds.max(0.0) * f64::from(RATE_HZ)) as usize;
    (0..samples)
        .map(|i| {
            let t = i as f64 / f64::from(RATE_HZ);
            let envelope = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
            let voice: f64 = [(1.0, 0.5), (2.0, 0.3), (3.0, 0.15), (5.0, 0.05)]
                .iter()
                .map(|(harmonic, weight)| {
                    weight * (2.0 * std::f64::consts::PI * 180.0 * harmonic * t).sin()
                })
                .sum();
            (envelope * voice * 14_000.0) as i16
        })
        .collect()
}

/// μ-law frames of 160 bytes; the last one is padded with μ-law silence.
pub fn mulaw_frames(samples: &[i16]) -> Vec<Vec<u8>> {
    samples
        .chunks(FRAME_SAMPLES)
        .map(|chunk| {
            let mut frame = Vec::with_capacity(FRAME_SAMPLES);
            G711::Mulaw.encode_into(chunk, &mut frame);
            frame.resize(FRAME_SAMPLES, G711::Mulaw.silence());
            frame
        })
        .collect()
}

/// One frame of μ-law silence.
pub fn silence_frame() -> Vec<u8> {
    vec![G711::Mulaw.silence(); FRAME_SAMPLES]
}

/// How many 20 ms frames `seconds` of audio take (rounded up).
pub fn frames_for_seconds(seconds: f64) -> usize {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0 / FRAME_MS as f64).ceil() as usize
    } else {
        0
    }
}

/// Decodes μ-law bytes, appending 16-bit samples.
pub fn decode_mulaw(bytes: &[u8], out: &mut Vec<i16>) {
    G711::Mulaw.decode_into(bytes, out);
}

/// Writes 8 kHz 16-bit mono samples as a WAV file.
pub fn write_wav_8k(path: &Path, samples: &[i16]) -> Result<(), AudioError> {
    let wav_error = |source| AudioError::Wav {
        path: path.display().to_string(),
        source,
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE_HZ,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(wav_error)?;
    for sample in samples {
        writer.write_sample(*sample).map_err(wav_error)?;
    }
    writer.finalize().map_err(wav_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, spec: hound::WavSpec, frames: usize, value: impl Fn(usize, u16) -> f32) {
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        for n in 0..frames {
            for channel in 0..spec.channels {
                let v = value(n, channel);
                match spec.sample_format {
                    hound::SampleFormat::Float => writer.write_sample(v).unwrap(),
                    hound::SampleFormat::Int => writer.write_sample(v as i32).unwrap(),
                }
            }
        }
        writer.finalize().unwrap();
    }

    #[test]
    fn stereo_48k_float_becomes_8k_first_channel() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 48_000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        // Channel 0: a 400 Hz tone at half scale; channel 1: silence.
        write(&path, spec, 48_000, |n, ch| {
            if ch == 0 {
                0.5 * (2.0 * std::f32::consts::PI * 400.0 * n as f32 / 48_000.0).sin()
            } else {
                0.0
            }
        });
        let samples = read_wav_8k(&path).unwrap();
        assert!(
            (7_990..=8_010).contains(&samples.len()),
            "{}",
            samples.len()
        );
        let peak = samples[1000..7000]
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!((15_000..=17_500).contains(&peak), "peak {peak}");
    }

    #[test]
    fn integer_widths_scale_to_16_bits() {
        assert_eq!(int_to_i16(127, 8), 127 << 8);
        assert_eq!(int_to_i16(-8_388_608, 24), i16::MIN);
        assert_eq!(int_to_i16(1234, 16), 1234);
        assert_eq!(float_to_i16(2.0), i16::MAX);
    }

    #[test]
    fn frames_are_160_bytes_and_padded_with_silence() {
        let frames = mulaw_frames(&vec![1000; 400]);
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(|f| f.len() == FRAME_SAMPLES));
        assert_eq!(frames[2][80], 0xFF);
        assert_ne!(frames[2][79], 0xFF);
        assert_eq!(frames_for_seconds(1.0), 50);
        assert_eq!(frames_for_seconds(0.01), 1);
        assert_eq!(frames_for_seconds(-1.0), 0);
    }

    #[test]
    fn written_wav_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        write_wav_8k(&path, &[0, 100, -100]).unwrap();
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().sample_rate, 8000);
        let back: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(back, vec![0, 100, -100]);
        assert!(matches!(
            read_wav_8k(&dir.path().join("missing.wav")),
            Err(AudioError::Wav { .. })
        ));
    }
}
