//! Wire types the runtime sends to the gateway (call lifecycle, transcript turns, usage).
//! Filled in by the runtime work; the gateway consumes them.
