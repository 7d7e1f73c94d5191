// "Call it now": a test call of one agent, run in the browser. The gateway records the call
// and hands back a call token (POST …/agents/{name}/test-calls); the page then is the carrier:
// it opens the media entry (/media) and speaks the Twilio media-stream dialect — `connected`,
// `start` with the token, 20 ms `media` frames of the microphone as base64 μ-law 8 kHz, `mark`
// echoes once the agent's audio before them has played, `stop` on hang-up — and plays the
// agent's `media` with WebAudio (`clear` drops what is queued: the caller barged in). The
// transcript comes from the call's record, polled while the call lasts.

import { api, tenantPath } from './api.js';
import * as g711 from './g711.js';

const TRANSCRIPT_MS = 1500;
/** How long the transcript is still polled after hang-up (the runtime's last events). */
const SETTLE_MS = 8000;

/**
 * One test call. `onChange(state)` is called on every change with `{phase, message,
 * agentMs, callerMs, callId, turns}`; `phase` is `starting`, `connected`, `ended` or `failed`.
 */
export class TestCall {
  constructor(slug, agent, onChange) {
    this.slug = slug;
    this.agent = agent;
    this.onChange = onChange;
    this.state = { phase: 'starting', message: 'Starting the call…', agentMs: 0, callerMs: 0, callId: null, turns: [] };
    this.sequence = 0;
    this.chunk = 0;
    this.pending = new Float32Array(0);
    this.sources = new Set();
    this.marks = [];
    this.playhead = 0;
    this.timers = [];
  }

  update(change) {
    Object.assign(this.state, change);
    this.onChange({ ...this.state });
  }

  /** Creates the call, asks for the microphone, opens the stream. Rejects on failure. */
  async start() {
    // The microphone first: a refusal creates no call record.
    this.microphone = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    const call = await api('POST', tenantPath(this.slug, `/agents/${encodeURIComponent(this.agent)}/test-calls`), {});
    this.update({ callId: call.callId, message: 'Connecting…' });
    this.streamSid = `MZ${call.callId.replace(/[^A-Za-z0-9]/g, '').slice(0, 32)}`;
    // The context runs at the device's rate (a microphone source cannot be resampled by
    // every browser); the capture is brought down to 8 kHz here, and the agent's 8 kHz
    // buffers are resampled by WebAudio on playback.
    this.audio = new AudioContext({ latencyHint: 'interactive' });
    this.downsampler = new g711.Downsampler(this.audio.sampleRate);
    // Started from the button's click, so the browser lets it run (and play).
    await this.audio.resume();
    await this.audio.audioWorklet.addModule('/console/js/capture-worklet.js');
    const source = this.audio.createMediaStreamSource(this.microphone);
    const tap = new AudioWorkletNode(this.audio, 'switchboard-capture');
    const mute = this.audio.createGain();
    mute.gain.value = 0;
    source.connect(tap).connect(mute).connect(this.audio.destination);
    tap.port.onmessage = (event) => this.captured(event.data);
    this.tap = tap;

    // Same origin as the console (the CSP allows no other); the gateway serves /media too.
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}${new URL(call.mediaUrl).pathname}`);
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
      this.send({
        event: 'start',
        sequenceNumber: this.next(),
        start: {
          accountSid: 'browser',
          streamSid: this.streamSid,
          callSid: call.callId,
          tracks: ['inbound'],
          mediaFormat: call.mediaFormat,
          customParameters: { callToken: call.callToken },
        },
        streamSid: this.streamSid,
      });
      this.update({ phase: 'connected', message: 'Connected: speak to the agent.' });
    });
    socket.addEventListener('message', (event) => this.received(event.data));
    socket.addEventListener('close', (event) => this.closed(event));
    this.timers.push(setInterval(() => this.pollTranscript(), TRANSCRIPT_MS));
  }

  next() {
    this.sequence += 1;
    return String(this.sequence);
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  /** Microphone samples: appended, cut into 20 ms frames, each sent as one `media` message. */
  captured(block) {
    if (this.state.phase !== 'connected') return;
    const samples = this.downsampler.push(block);
    const joined = new Float32Array(this.pending.length + samples.length);
    joined.set(this.pending);
    joined.set(samples, this.pending.length);
    let offset = 0;
    while (joined.length - offset >= g711.FRAME) {
      const frame = joined.subarray(offset, offset + g711.FRAME);
      offset += g711.FRAME;
      this.chunk += 1;
      this.send({
        event: 'media',
        sequenceNumber: this.next(),
        media: {
          track: 'inbound',
          chunk: String(this.chunk),
          timestamp: String((this.chunk - 1) * 20),
          payload: g711.toBase64(g711.encode(frame)),
        },
        streamSid: this.streamSid,
      });
    }
    this.pending = joined.slice(offset);
    this.state.callerMs = this.chunk * 20;
  }

  received(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.event === 'media' && message.media && message.media.payload) {
      this.play(g711.decode(g711.fromBase64(message.media.payload)));
    } else if (message.event === 'mark' && message.mark) {
      this.markAfterPlayback(message.mark.name);
    } else if (message.event === 'clear') {
      this.clear();
    }
  }

  /** Queues agent audio right after what is already queued. */
  play(samples) {
    if (!samples.length) return;
    const buffer = this.audio.createBuffer(1, samples.length, g711.RATE);
    buffer.copyToChannel(samples, 0);
    const source = this.audio.createBufferSource();
    source.buffer = buffer;
    source.connect(this.audio.destination);
    const at = Math.max(this.audio.currentTime + 0.05, this.playhead);
    source.start(at);
    this.playhead = at + buffer.duration;
    this.sources.add(source);
    source.addEventListener('ended', () => this.sources.delete(source));
    const agentMs = this.state.agentMs + Math.round(buffer.duration * 1000);
    this.update({ agentMs, message: `Connected: the agent spoke (${(agentMs / 1000).toFixed(1)} s heard).` });
  }

  /** Echoes a mark once the audio queued before it has played (the runtime paces on it). */
  markAfterPlayback(name) {
    const delay = Math.max(0, (this.playhead - this.audio.currentTime) * 1000);
    const mark = { name, timer: null };
    mark.timer = setTimeout(() => this.echoMark(mark), delay);
    this.marks.push(mark);
  }

  echoMark(mark) {
    clearTimeout(mark.timer);
    this.marks = this.marks.filter((m) => m !== mark);
    this.send({ event: 'mark', sequenceNumber: this.next(), streamSid: this.streamSid, mark: { name: mark.name } });
  }

  /** Barge-in: everything queued is dropped and its marks are echoed at once. */
  clear() {
    for (const source of this.sources) {
      try {
        source.stop();
      } catch {
        // not started yet
      }
    }
    this.sources.clear();
    this.playhead = 0;
    for (const mark of [...this.marks]) this.echoMark(mark);
  }

  async pollTranscript() {
    if (!this.state.callId) return;
    try {
      const page = await api('GET', tenantPath(this.slug, `/calls/${encodeURIComponent(this.state.callId)}/transcript`));
      const turns = page.items || [];
      if (turns.length !== this.state.turns.length) this.update({ turns });
    } catch {
      // the next poll tries again
    }
  }

  /** Hangs up: `stop`, then the socket closes. */
  hangUp() {
    this.hungUp = true;
    this.send({ event: 'stop', sequenceNumber: this.next(), stop: { accountSid: 'browser', callSid: this.state.callId }, streamSid: this.streamSid });
    if (this.socket) this.socket.close(1000, 'caller hung up');
    else this.release();
  }

  closed(event) {
    // Ended by either side in order, or by our hang-up whatever the close code says.
    const failed = !this.hungUp && (this.state.phase !== 'connected' || (event.code !== 1000 && event.code !== 1005));
    this.release();
    if (failed && event.code === 1013) {
      this.update({ phase: 'failed', message: 'The tenant is at its limit of calls at once; try again when one ends.' });
    } else if (failed) {
      this.update({ phase: 'failed', message: `The call was cut (${event.code}${event.reason ? `: ${event.reason}` : ''}).` });
    } else {
      this.update({ phase: 'ended', message: 'Call ended.' });
    }
    // The runtime's last transcript turns arrive shortly after the end.
    const poll = setInterval(() => this.pollTranscript(), TRANSCRIPT_MS);
    setTimeout(() => clearInterval(poll), SETTLE_MS);
  }

  /** Stops the microphone, the audio and the polling. */
  release() {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    for (const mark of this.marks) clearTimeout(mark.timer);
    this.marks = [];
    if (this.microphone) for (const track of this.microphone.getTracks()) track.stop();
    if (this.tap) this.tap.port.onmessage = null;
    if (this.audio && this.audio.state !== 'closed') {
      // Let queued agent audio finish before closing the output.
      const rest = Math.max(0, (this.playhead - this.audio.currentTime) * 1000);
      const audio = this.audio;
      setTimeout(() => audio.close().catch(() => {}), rest + 100);
    }
  }
}
