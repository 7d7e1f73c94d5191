//! G.711 μ-law and A-law, the codecs of every telephone line.
//!
//! Written by hand (ITU-T G.711, the classic Sun reference algorithm) rather than pulled from
//! a crate: it is thirty lines, core to us, and decoding goes through 256-entry tables built
//! at compile time so a 20 ms frame costs 160 table look-ups.

/// Bias added before μ-law segment search (ITU-T G.711).
const MULAW_BIAS: i32 = 0x84;
/// Largest magnitude μ-law can represent before clipping.
const MULAW_CLIP: i32 = 32635;

/// Encodes one 16-bit linear sample as μ-law.
pub fn mulaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(MULAW_CLIP) + MULAW_BIAS;
    let exponent = segment_of(pcm >> 7);
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Position of the highest set bit among the low 8 bits (0 when none): the G.711 segment.
const fn segment_of(value: i32) -> i32 {
    let mut segment = 0;
    let mut v = value & 0xFF;
    while v > 1 {
        v >>= 1;
        segment += 1;
    }
    segment
}

const fn mulaw_decode_const(byte: u8) -> i16 {
    let b = !byte;
    let sign = b & 0x80;
    let exponent = ((b >> 4) & 0x07) as i32;
    let mantissa = (b & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + MULAW_BIAS) << exponent) - MULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one 16-bit linear sample as A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    // A-law works on 13-bit magnitudes.
    let mut pcm = i32::from(sample) >> 3;
    let mask = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    // Segment = first i with pcm <= (0x20 << i) - 1 (Sun g711.c `seg_aend`).
    let mut segment = 0;
    while segment < 8 && pcm >= (0x20 << segment) {
        segment += 1;
    }
    let byte = match segment {
        8 => 0x7F,
        0 | 1 => ((segment << 4) | ((pcm >> 1) & 0x0F)) as u8,
        _ => ((segment << 4) | ((pcm >> segment) & 0x0F)) as u8,
    };
    byte ^ mask
}

const fn alaw_decode_const(byte: u8) -> i16 {
    let a = (byte ^ 0x55) as i32;
    let exponent = (a & 0x70) >> 4;
    let mantissa = a & 0x0F;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_decode_const(i as u8)
        } else {
            mulaw_decode_const(i as u8)
        };
        i += 1;
    }
    table
}

static MULAW_TABLE: [i16; 256] = build_table(false);
static ALAW_TABLE: [i16; 256] = build_table(true);

/// Decodes one μ-law byte to a 16-bit linear sample.
pub fn mulaw_decode(byte: u8) -> i16 {
    MULAW_TABLE[usize::from(byte)]
}

/// Decodes one A-law byte to a 16-bit linear sample.
pub fn alaw_decode(byte: u8) -> i16 {
    ALAW_TABLE[usize::from(byte)]
}

/// The G.711 law a carrier stream uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum G711 {
    /// μ-law (`PCMU`, `audio/x-mulaw`): North America and Japan; Twilio always.
    #[default]
    Mulaw,
    /// A-law (`PCMA`): most of the rest of the world.
    Alaw,
}

impl G711 {
    /// Decodes `bytes`, appending the linear samples to `out`.
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<i16>) {
        let table = match self {
            G711::Mulaw => &MULAW_TABLE,
            G711::Alaw => &ALAW_TABLE,
        };
        out.extend(bytes.iter().map(|b| table[usize::from(*b)]));
    }

    /// Encodes `samples`, appending the G.711 bytes to `out`.
    pub fn encode_into(self, samples: &[i16], out: &mut Vec<u8>) {
        match self {
            G711::Mulaw => out.extend(samples.iter().map(|s| mulaw_encode(*s))),
            G711::Alaw => out.extend(samples.iter().map(|s| alaw_encode(*s))),
        }
    }

    /// The byte that encodes silence (used to pad frames).
    pub fn silence(self) -> u8 {
        match self {
            G711::Mulaw => 0xFF,
            G711::Alaw => 0xD5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_known_vectors() {
        // Reference values from ITU-T G.711 / the Sun g711.c implementation.
        assert_eq!(mulaw_encode(0), 0xFF);
        assert_eq!(mulaw_encode(-1), 0x7F);
        assert_eq!(mulaw_encode(32767), 0x80);
        assert_eq!(mulaw_encode(-32768), 0x00);
        assert_eq!(mulaw_decode(0xFF), 0);
        assert_eq!(mulaw_decode(0x80), 32124);
        assert_eq!(mulaw_decode(0x00), -32124);
        assert_eq!(mulaw_decode(0xF0), 120);
    }

    #[test]
    fn alaw_known_vectors() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(32767), 0xAA);
        assert_eq!(alaw_encode(-32768), 0x2A);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
    }

    #[test]
    fn every_code_round_trips_through_linear() {
        // 0x7F is μ-law's "negative zero": it decodes to 0, which encodes as 0xFF.
        for byte in (0..=255u8).filter(|b| *b != 0x7F) {
            assert_eq!(mulaw_encode(mulaw_decode(byte)), byte, "mulaw {byte:#x}")
        }
        for byte in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(byte)), byte, "alaw {byte:#x}");
        }
    }

    #[test]
    fn quantisation_error_is_bounded_relative_to_amplitude() {
        for law in [G711::Mulaw, G711::Alaw] {
            for sample in (-32000i16..32000).step_by(7) {
                let mut bytes = Vec::new();
                law.encode_into(&[sample], &mut bytes);
                let mut back = Vec::new();
                law.decode_into(&bytes, &mut back);
                let error = (i32::from(back[0]) - i32::from(sample)).abs();
                // Logarithmic companding: error below ~1/16 of the amplitude plus a floor.
                assert!(
                    error <= i32::from(sample).abs() / 16 + 16,
                    "{law:?} {sample} -> {}",
                    back[0]
                );
            }
        }
    }
}
