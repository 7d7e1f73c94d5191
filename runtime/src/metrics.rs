//! Prometheus metrics of the runtime, all labelled with the tenant.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Buckets of per-frame handling time (seconds): 2.5 µs to 50 ms, fine enough for p99s.
const FRAME_BUCKETS: &[f64] = &[
    0.0000025, 0.000005, 0.0000075, 0.00001, 0.000015, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05,
];
/// Buckets of pipeline stage latencies (seconds).
const STAGE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0,
    5.0, 10.0,
];

/// Pipeline stages of [`Metrics::stage_latency`].
pub const STAGES: [&str; 4] = [
    "stt",
    "llm_first_token",
    "tts_first_audio",
    "voice_to_voice",
];
/// How a call can end ([`Metrics::calls_total`]'s `reason`).
pub const END_REASONS: [&str; 8] = [
    "caller_hangup",
    "agent_hangup",
    "transferred",
    "max_duration",
    "provider_failure",
    "media_timeout",
    "shutdown",
    "protocol_error",
];
/// Why a media stream is refused ([`Metrics::calls_refused`]'s `why`).
pub const REFUSALS: [&str; 2] = ["full", "draining"];
/// Stages a provider can fail in ([`Metrics::provider_errors`]'s `stage`).
pub const PROVIDER_STAGES: [&str; 3] = ["stt", "llm", "tts"];

/// Every metric the runtime exports.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The registry served on `/metrics`.
    pub registry: Registry,
    /// Calls in progress.
    pub active_calls: IntGauge,
    /// Calls this pod takes at once (`SWITCHBOARD_MAX_CONCURRENT_CALLS`): saturation is
    /// `active_calls / max_concurrent_calls`.
    pub max_concurrent_calls: IntGauge,
    /// Calls by how they ended.
    pub calls_total: IntCounterVec,
    /// WebSocket upgrades refused (full or draining).
    pub calls_refused: IntCounterVec,
    /// Inbound media frames.
    pub frames_in: IntCounter,
    /// Outbound media frames.
    pub frames_out: IntCounter,
    /// Inbound frames that could not be parsed.
    pub bad_frames: IntCounter,
    /// Time to handle one inbound carrier message (parse, decode, VAD, STT forwarding).
    pub frame_handling: Histogram,
    /// Latency per pipeline stage (`stt`, `llm_first_token`, `tts_first_audio`, `voice_to_voice`).
    pub stage_latency: HistogramVec,
    /// Provider failures by stage and provider.
    pub provider_errors: IntCounterVec,
    /// Times the caller interrupted the agent.
    pub barge_ins: IntCounter,
    /// Events delivered to / dropped before the gateway.
    pub events: IntCounterVec,
    /// Call recordings by outcome: `stored` (the gateway took it) or `lost`.
    pub recordings: IntCounterVec,
}

impl Metrics {
    /// Creates and registers the metrics in a fresh registry.
    pub fn new(tenant: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let opts = |name: &str, help: &str| {
            Opts::new(name, help)
                .namespace("switchboard_runtime")
                .const_label("tenant", tenant)
        };
        let hopts = |name: &str, help: &str, buckets: &[f64]| {
            HistogramOpts::new(name, help)
                .namespace("switchboard_runtime")
                .const_label("tenant", tenant)
                .buckets(buckets.to_vec())
        };
        let metrics = Self {
            active_calls: IntGauge::with_opts(opts("active_calls", "Calls in progress"))?,
            max_concurrent_calls: IntGauge::with_opts(opts(
                "max_concurrent_calls",
                "Calls this pod takes at once; more are refused",
            ))?,
            calls_total: IntCounterVec::new(
                opts("calls_total", "Calls handled, by end reason"),
                &["reason"],
            )?,
            calls_refused: IntCounterVec::new(
                opts("calls_refused_total", "Media streams refused"),
                &["why"],
            )?,
            frames_in: IntCounter::with_opts(opts("frames_in_total", "Inbound media frames"))?,
            frames_out: IntCounter::with_opts(opts("frames_out_total", "Outbound media frames"))?,
            bad_frames: IntCounter::with_opts(opts(
                "bad_frames_total",
                "Inbound messages that could not be parsed",
            ))?,
            frame_handling: Histogram::with_opts(hopts(
                "frame_handling_seconds",
                "Time to handle one inbound carrier message",
                FRAME_BUCKETS,
            ))?,
            stage_latency: HistogramVec::new(
                hopts(
                    "stage_latency_seconds",
                    "Latency of each pipeline stage",
                    STAGE_BUCKETS,
                ),
                &["stage"],
            )?,
            provider_errors: IntCounterVec::new(
                opts("provider_errors_total", "Provider failures"),
                &["stage", "provider"],
            )?,
            barge_ins: IntCounter::with_opts(opts(
                "barge_ins_total",
                "Times the caller spoke over the agent",
            ))?,
            events: IntCounterVec::new(
                opts("events_total", "Events to the gateway by outcome"),
                &["outcome"],
            )?,
            recordings: IntCounterVec::new(
                opts(
                    "recordings_total",
                    "Call recordings sent to the gateway by outcome",
                ),
                &["outcome"],
            )?,
            registry,
        };
        metrics.register_all()?;
        metrics.initialise_series();
        Ok(metrics)
    }

    /// Creates every series of a known label set at 0, so dashboards and alert rules see
    /// them from the start (a `rate()` over a series born with its first event misses that
    /// event). Provider names are open-ended; the builtin providers, which every agent falls
    /// back to, are created per stage, the others with their first failure.
    fn initialise_series(&self) {
        for stage in STAGES {
            self.stage_latency.with_label_values(&[stage]);
        }
        for reason in END_REASONS {
            self.calls_total.with_label_values(&[reason]);
        }
        for why in REFUSALS {
            self.calls_refused.with_label_values(&[why]);
        }
        for stage in PROVIDER_STAGES {
            self.provider_errors.with_label_values(&[stage, "builtin"]);
        }
        for outcome in ["stored", "lost"] {
            self.recordings.with_label_values(&[outcome]);
        }
    }

    fn register_all(&self) -> Result<(), prometheus::Error> {
        let r = &self.registry;
        r.register(Box::new(self.active_calls.clone()))?;
        r.register(Box::new(self.max_concurrent_calls.clone()))?;
        r.register(Box::new(self.calls_total.clone()))?;
        r.register(Box::new(self.calls_refused.clone()))?;
        r.register(Box::new(self.frames_in.clone()))?;
        r.register(Box::new(self.frames_out.clone()))?;
        r.register(Box::new(self.bad_frames.clone()))?;
        r.register(Box::new(self.frame_handling.clone()))?;
        r.register(Box::new(self.stage_latency.clone()))?;
        r.register(Box::new(self.provider_errors.clone()))?;
        r.register(Box::new(self.barge_ins.clone()))?;
        r.register(Box::new(self.events.clone()))?;
        r.register(Box::new(self.recordings.clone()))?;
        Ok(())
    }
}
