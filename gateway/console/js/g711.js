// G.711 μ-law at 8 kHz, the carriers' media-stream audio: pure functions (no DOM, no I/O) that
// turn microphone samples into the `media` frames' payload and the agent's payload back into
// samples the speakers can play.

/** Samples per second of the media stream. */
export const RATE = 8000;
/** Samples in one 20 ms `media` frame (what carriers send). */
export const FRAME = 160;

const BIAS = 0x84;
const CLIP = 32635;

/** One 16-bit linear sample (−32768…32767) as a μ-law byte (ITU-T G.711). */
export function encodeSample(sample) {
  let value = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = value < 0 ? 0x80 : 0;
  if (sign) value = -value;
  if (value > CLIP) value = CLIP;
  value += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (value & mask) === 0 && exponent > 0; mask >>= 1) exponent -= 1;
  const mantissa = (value >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** One μ-law byte as a 16-bit linear sample. */
export function decodeSample(byte) {
  const value = ~byte & 0xff;
  const exponent = (value >> 4) & 0x07;
  const magnitude = ((((value & 0x0f) << 3) + BIAS) << exponent) - BIAS;
  return value & 0x80 ? -magnitude : magnitude;
}

/** Float samples (−1…1, WebAudio's) as μ-law bytes. */
export function encode(floats) {
  const bytes = new Uint8Array(floats.length);
  for (let i = 0; i < floats.length; i += 1) bytes[i] = encodeSample(floats[i] * 32767);
  return bytes;
}

/** μ-law bytes as float samples (−1…1). */
export function decode(bytes) {
  const floats = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i += 1) floats[i] = decodeSample(bytes[i]) / 32768;
  return floats;
}

/**
 * Brings microphone samples from the audio context's rate (44.1 or 48 kHz) down to 8 kHz as
 * they arrive in blocks: each output sample is the mean of the input samples of its span (a
 * box filter, enough against aliasing for speech), and the fractional position carries over
 * from one block to the next so no sample is lost or doubled at block edges.
 */
export class Downsampler {
  constructor(fromRate, toRate = RATE) {
    this.ratio = Math.max(1, fromRate / toRate);
    this.next = this.ratio;
    this.index = 0;
    this.sum = 0;
    this.count = 0;
  }

  /** The 8 kHz samples completed by `floats` (the rest waits for the next block). */
  push(floats) {
    const out = new Float32Array(Math.ceil(floats.length / this.ratio) + 1);
    let n = 0;
    for (let i = 0; i < floats.length; i += 1) {
      this.sum += floats[i];
      this.count += 1;
      this.index += 1;
      if (this.index >= this.next) {
        out[n] = this.sum / this.count;
        n += 1;
        this.sum = 0;
        this.count = 0;
        this.next += this.ratio;
      }
    }
    return out.subarray(0, n);
  }
}

/** Bytes as base64 (the frames' `payload`). */
export function toBase64(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 1) text += String.fromCharCode(bytes[i]);
  return btoa(text);
}

/** A base64 `payload` as bytes. */
export function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
