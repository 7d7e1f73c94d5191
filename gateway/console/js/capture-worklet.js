// The microphone tap of a test call: an AudioWorklet processor that hands each block of the
// first input channel to the page (which encodes and sends it); it outputs nothing.

class CaptureProcessor extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel && channel.length) this.port.postMessage(channel.slice(0));
    return true;
  }
}

registerProcessor('switchboard-capture', CaptureProcessor);
