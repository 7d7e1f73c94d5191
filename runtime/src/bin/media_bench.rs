//! `media-bench`: opens N simulated carrier streams at real-time pace against the runtime and
//! reports how many it holds, frame-handling latency, CPU and memory per call, and the
//! runtime's own added voice-to-voice latency.
//!
//! Unless `--url` points at a running runtime, the benchmark starts one in-process with the
//! builtin providers (the echo agent, so replies need no provider time at all) and the load
//! generator shares its process and cores: CPU and memory figures then include the generator
//! and are an upper bound for the runtime alone.
//!
//! Each stream repeats a 3 s cycle: 1 s of speech-like audio, then 2 s of line noise. The
//! runtime detects the end of the caller's turn after the configured silence and echoes the
//! utterance back. Added latency (last line, p50) = first reply frame received − send time of
//! the frame that completes the end-of-turn silence: what the runtime (and loopback transport)
//! adds on top of the silence it must wait for. Also printed: the same measured from the last
//! speech frame minus the silence, which additionally includes the generator's own lateness.
//!
//! Frame-handling latency is the runtime's own `frame_handling_seconds` histogram (parse,
//! decode, VAD, turn logic per inbound message), read from `/metrics` over the measurement
//! window and interpolated within buckets.
//!
//! The last line is for scripts:
//! `streams=<held> p50_ms=<x> p99_ms=<x> kib_per_call=<x> added_latency_ms=<p50>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::serve::ListenerExt;
use base64::Engine;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use switchboard_crds::tenant::AgentSpec;
use switchboard_crds::turn_taking::{TurnTakingSpec, VadChoice};
use switchboard_runtime::codec::G711;
use switchboard_runtime::providers::deepgram::small_buffers;
use switchboard_runtime::vad::signals::{noise, speech_like};
use switchboard_runtime::{
    AgentSnapshot, ConfigStore, EventSink, Metrics, RuntimeConfig, RuntimeState, router,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Frames of speech per cycle (1 s).
const SPEECH_FRAMES: usize = 50;
/// Frames per cycle (3 s).
const CYCLE_FRAMES: usize = 150;

#[derive(Parser, Debug)]
#[command(
    name = "media-bench",
    about = "Simulated carrier streams against the voice runtime"
)]
struct Args {
    /// Concurrent streams.
    #[arg(long, default_value_t = 100)]
    streams: usize,
    /// Seconds of measurement once every stream is connected.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Base URL of a running runtime (e.g. `ws://127.0.0.1:8080`); default: start one in-process.
    #[arg(long)]
    url: Option<String>,
    /// End-of-turn silence of the in-process runtime's agent (must match the runtime's with --url).
    #[arg(long, default_value_t = 300)]
    end_of_turn_ms: u64,
    /// Seconds over which streams connect.
    #[arg(long)]
    ramp_seconds: Option<f64>,
    /// VAD of the in-process runtime's agent, as its `turnTaking.vad`: `neural` (the
    /// default) or `energy` (ignored with --url: the runtime's agent decides).
    #[arg(long, default_value = "neural", value_parser = parse_vad)]
    vad: VadChoice,
}

fn parse_vad(value: &str) -> Result<VadChoice, String> {
    match value {
        "neural" => Ok(VadChoice::Neural),
        "energy" => Ok(VadChoice::Energy),
        other => Err(format!("unknown VAD {other:?} (energy or neural)")),
    }
}

#[derive(Default)]
struct StreamResult {
    connected: bool,
    held: bool,
    frames_sent: u64,
    frames_received: u64,
    added_latency_ms: Vec<f64>,
    /// Reply arrival − send time of the frame that completes the end-of-turn silence.
    after_trigger_ms: Vec<f64>,
    /// How late the generator sent frames (ms behind the 20 ms schedule), sampled each second.
    send_lag_ms: Vec<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (base, metrics_url) = match &args.url {
        Some(url) => {
            let http = url.replacen("ws", "http", 1);
            (
                url.trim_end_matches('/').to_owned(),
                format!("{}/metrics", http.trim_end_matches('/')),
            )
        }
        None => start_runtime(&args).await?,
    };
    let http = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = scrape(&http, &metrics_url, args.url.is_none()).await?;

    let frames = Arc::new(cycle_payloads());
    let ramp = Duration::from_secs_f64(
        args.ramp_seconds
            .unwrap_or((args.streams as f64 * 0.004).clamp(1.0, 10.0)),
    );
    let begin = Instant::now() + Duration::from_millis(100);
    // Let every stream settle for a cycle before measuring.
    let window_start = begin + ramp + Duration::from_secs(3);
    let window_end = window_start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::with_capacity(args.streams);
    for index in 0..args.streams {
        let start_at = begin + ramp.mul_f64(index as f64 / args.streams.max(1) as f64);
        let plan = StreamPlan {
            index,
            url: format!("{base}/media/twilio"),
            frames: frames.clone(),
            start_at,
            window_start,
            window_end,
            end_of_turn: Duration::from_millis(args.end_of_turn_ms),
        };
        tasks.push(tokio::spawn(run_stream(plan)));
    }
    println!(
        "media-bench: {} streams, ramp {:.1}s, measuring {}s at 50 frames/s each, {} VAD",
        args.streams,
        ramp.as_secs_f64(),
        args.seconds,
        if args.url.is_some() {
            "the runtime's".to_owned()
        } else {
            format!("{:?}", args.vad).to_lowercase()
        }
    );
    tokio::time::sleep_until(window_start.into()).await;
    let at_start = scrape(&http, &metrics_url, args.url.is_none()).await?;
    tokio::time::sleep_until((window_end - Duration::from_millis(300)).into()).await;
    let at_end = scrape(&http, &metrics_url, args.url.is_none()).await?;

    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap_or_default());
    }
    report(&args, &results, &baseline, &at_start, &at_end);
    Ok(())
}

async fn start_runtime(args: &Args) -> anyhow::Result<(String, String)> {
    let metrics = Metrics::new("bench")?;
    let (events, _) = EventSink::spawn(None, None, metrics.clone(), CancellationToken::new());
    let agent = AgentSpec {
        greeting: String::new(),
        end_of_turn_silence_ms: i32::try_from(args.end_of_turn_ms).unwrap_or(300),
        turn_taking: TurnTakingSpec {
            vad: Some(args.vad),
            ..TurnTakingSpec::default()
        },
        ..AgentSpec::default()
    };
    let store = Arc::new(ConfigStore::new(AgentSnapshot {
        agent,
        ..AgentSnapshot::default()
    }));
    let config = RuntimeConfig {
        tenant: "bench".into(),
        max_concurrent_calls: args.streams.max(1),
        ..RuntimeConfig::default()
    };
    let state = RuntimeState::new(config, store, metrics.clone(), events);
    let app = router(state.clone()).merge(switchboard_telemetry::observability_router(
        metrics.registry.clone(),
        state.readiness(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("runtime failed: {error}");
        }
    });
    Ok((format!("ws://{addr}"), format!("http://{addr}/metrics")))
}

/// Base64 μ-law payloads of one cycle: speech, then line noise.
fn cycle_payloads() -> Vec<String> {
    let mut pcm = speech_like(SPEECH_FRAMES * 160, 0, 8000.0);
    pcm.extend(noise((CYCLE_FRAMES - SPEECH_FRAMES) * 160, 5, 20.0));
    pcm.chunks(160)
        .map(|frame| {
            let mut bytes = Vec::with_capacity(160);
            G711::Mulaw.encode_into(frame, &mut bytes);
            base64::engine::general_purpose::STANDARD.encode(bytes)
        })
        .collect()
}

struct StreamPlan {
    index: usize,
    url: String,
    frames: Arc<Vec<String>>,
    start_at: Instant,
    window_start: Instant,
    window_end: Instant,
    end_of_turn: Duration,
}

async fn run_stream(plan: StreamPlan) -> StreamResult {
    let mut result = StreamResult::default();
    tokio::time::sleep_until(plan.start_at.into()).await;
    let connect = tokio_tungstenite::connect_async_with_config(
        plan.url.as_str(),
        Some(small_buffers()),
        true,
    );
    let Ok((mut socket, _)) = connect.await else {
        return result;
    };
    result.connected = true;
    let sid = format!("MZbench{}", plan.index);
    let start = serde_json::json!({"event":"start","sequenceNumber":"1","streamSid":sid,"start":{"streamSid":sid,"callSid":format!("CAbench{}", plan.index),"tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"callId":format!("bench-{}", plan.index),"tenant":"bench"}}});
    if socket
        .send(Message::text(
            r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#,
        ))
        .await
        .is_err()
        || socket.send(Message::text(start.to_string())).await.is_err()
    {
        return result;
    }
    let schedule_start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval_at(schedule_start, Duration::from_millis(20));
    // A carrier sends every frame: catch up after a late wake-up rather than skip.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut frame = 0usize;
    let mut last_speech_sent: Option<Instant> = None;
    let mut trigger_sent: Option<Instant> = None;
    // The frame whose arrival completes the end-of-turn silence: the runtime cannot answer
    // earlier, and the generator's own lateness in sending the silence is excluded.
    let trigger_index = SPEECH_FRAMES - 1 + (plan.end_of_turn.as_millis() as usize / 20).max(1);
    let mut failed = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                if now >= plan.window_end {
                    break;
                }
                let index = frame % CYCLE_FRAMES;
                let text = format!(
                    r#"{{"event":"media","sequenceNumber":"{}","media":{{"track":"inbound","chunk":"{}","timestamp":"{}","payload":"{}"}},"streamSid":"{sid}"}}"#,
                    frame + 2, frame + 1, frame * 20, plan.frames[index]
                );
                if socket.send(Message::text(text)).await.is_err() {
                    failed = true;
                    break;
                }
                result.frames_sent += 1;
                if frame.is_multiple_of(50) && now >= plan.window_start {
                    let due = schedule_start + Duration::from_millis(20 * frame as u64);
                    let lag = tokio::time::Instant::now().saturating_duration_since(due);
                    result.send_lag_ms.push(lag.as_secs_f64() * 1000.0);
                }
                if index == SPEECH_FRAMES - 1 {
                    last_speech_sent = Some(Instant::now());
                    trigger_sent = None;
                }
                if index == trigger_index && last_speech_sent.is_some() {
                    trigger_sent = Some(Instant::now());
                }
                frame += 1;
            }
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if text.starts_with(r#"{"event":"media""#) {
                        result.frames_received += 1;
                        if let Some(trigger) = trigger_sent.take() {
                            let now = Instant::now();
                            if now >= plan.window_start {
                                result.after_trigger_ms.push(now.duration_since(trigger).as_secs_f64() * 1000.0);
                                if let Some(sent) = last_speech_sent.take() {
                                    let added = now.duration_since(sent).as_secs_f64() - plan.end_of_turn.as_secs_f64();
                                    result.added_latency_ms.push(added * 1000.0);
                                }
                            }
                            last_speech_sent = None;
                        }
                    } else if text.starts_with(r#"{"event":"mark""#) {
                        // Like a carrier: acknowledge the mark once "played".
                        let _ = socket.send(Message::text(text.to_string())).await;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    failed = true;
                    break;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    result.held = !failed && result.frames_received > 0;
    let _ = socket
        .send(Message::text(format!(
            r#"{{"event":"stop","sequenceNumber":"{}","stop":{{}},"streamSid":"{sid}"}}"#,
            frame + 2
        )))
        .await;
    let _ = socket.close(None).await;
    result
}

/// The figures read from `/metrics`.
#[derive(Default, Debug)]
struct Scrape {
    cpu_seconds: f64,
    rss_bytes: f64,
    /// (upper bound, cumulative count) of the frame-handling histogram.
    buckets: Vec<(f64, f64)>,
    /// The same for the runtime's own voice-to-voice stage (turn end → first reply frame).
    voice_buckets: Vec<(f64, f64)>,
}

/// CPU seconds (user + system) of this process from `/proc/self/stat` (Linux, USER_HZ = 100).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

async fn scrape(http: &reqwest::Client, url: &str, local: bool) -> anyhow::Result<Scrape> {
    let text = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot scrape {url}"))?
        .text()
        .await?;
    let mut scrape = Scrape::default();
    let local_cpu = own_cpu_seconds();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if name == "process_cpu_seconds_total" {
            scrape.cpu_seconds = value;
        } else if name == "process_resident_memory_bytes" {
            scrape.rss_bytes = value;
        } else if name.starts_with("switchboard_runtime_frame_handling_seconds_bucket")
            && let Some(le) = name.split("le=\"").nth(1).and_then(|s| s.split('"').next())
        {
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            scrape.buckets.push((bound, value));
        } else if name.starts_with("switchboard_runtime_stage_latency_seconds_bucket")
            && name.contains("stage=\"voice_to_voice\"")
            && let Some(le) = name.split("le=\"").nth(1).and_then(|s| s.split('"').next())
        {
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            scrape.voice_buckets.push((bound, value));
        }
    }
    // In-process, the kernel's own accounting is finer than the metric's whole seconds.
    if let Some(cpu) = local_cpu.filter(|_| local) {
        scrape.cpu_seconds = cpu;
    }
    if scrape.buckets.is_empty() {
        bail!("no frame-handling histogram at {url}");
    }
    Ok(scrape)
}

/// Quantile `q` of the difference of two cumulative histograms, interpolated in its bucket.
fn histogram_quantile(start: &[(f64, f64)], end: &[(f64, f64)], q: f64) -> f64 {
    let counts: Vec<(f64, f64)> = end
        .iter()
        .map(|(bound, count)| {
            let before = start
                .iter()
                .find(|(b, _)| b == bound)
                .map_or(0.0, |(_, c)| *c);
            (*bound, count - before)
        })
        .collect();
    let total = counts.last().map_or(0.0, |(_, c)| *c);
    if total <= 0.0 {
        return f64::NAN;
    }
    let target = q * total;
    let mut lower = (0.0, 0.0);
    for (bound, cumulative) in counts {
        if cumulative >= target {
            if bound.is_infinite() {
                return lower.0;
            }
            let share = (target - lower.1) / (cumulative - lower.1).max(1.0);
            return lower.0 + (bound - lower.0) * share;
        }
        lower = (bound, cumulative);
    }
    lower.0
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(args: &Args, results: &[StreamResult], baseline: &Scrape, start: &Scrape, end: &Scrape) {
    let connected = results.iter().filter(|r| r.connected).count();
    let held = results.iter().filter(|r| r.held).count();
    let sent: u64 = results.iter().map(|r| r.frames_sent).sum();
    let received: u64 = results.iter().map(|r| r.frames_received).sum();
    let mut added: Vec<f64> = results
        .iter()
        .flat_map(|r| r.added_latency_ms.iter().copied())
        .collect();
    added.sort_by(f64::total_cmp);
    let p50 = histogram_quantile(&start.buckets, &end.buckets, 0.50) * 1000.0;
    let p99 = histogram_quantile(&start.buckets, &end.buckets, 0.99) * 1000.0;
    let window = args.seconds as f64 - 0.3;
    let cpu = (end.cpu_seconds - start.cpu_seconds) / window;
    let cpu_per_stream = cpu / held.max(1) as f64 * 100.0;
    let kib_per_call = (end.rss_bytes - baseline.rss_bytes).max(0.0) / held.max(1) as f64 / 1024.0;
    let scope = if args.url.is_some() {
        "runtime process"
    } else {
        "runtime + load generator (one process)"
    };
    let mut lag: Vec<f64> = results
        .iter()
        .flat_map(|r| r.send_lag_ms.iter().copied())
        .collect();
    lag.sort_by(f64::total_cmp);
    println!(
        "machine load average at the end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "load generator lateness vs the 20 ms schedule: p50 {:.1} ms, p99 {:.1} ms (large values mean the generator was starved of CPU)",
        percentile(&lag, 0.5),
        percentile(&lag, 0.99)
    );
    println!(
        "streams: requested {} connected {} held {}",
        args.streams, connected, held
    );
    println!("frames: sent {sent} received {received}");
    println!("frame handling (runtime histogram): p50 {p50:.3} ms, p99 {p99:.3} ms");
    println!(
        "cpu ({scope}): {:.2} cores total, {:.3}% of a core per stream",
        cpu, cpu_per_stream
    );
    println!(
        "memory ({scope}): rss {:.1} MiB idle -> {:.1} MiB loaded, {:.1} KiB per call",
        baseline.rss_bytes / 1048576.0,
        end.rss_bytes / 1048576.0,
        kib_per_call
    );
    println!(
        "voice-to-voice minus end-of-turn silence, from the caller's last speech frame (includes generator lateness) over {} replies: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        added.len(),
        percentile(&added, 0.5),
        percentile(&added, 0.9),
        percentile(&added, 0.99),
        added.last().copied().unwrap_or(f64::NAN)
    );
    let mut trigger: Vec<f64> = results
        .iter()
        .flat_map(|r| r.after_trigger_ms.iter().copied())
        .collect();
    trigger.sort_by(f64::total_cmp);
    println!(
        "added latency after the end-of-turn frame was sent (runtime + transport) over {} replies: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
        trigger.len(),
        percentile(&trigger, 0.5),
        percentile(&trigger, 0.9),
        percentile(&trigger, 0.99)
    );
    println!(
        "runtime voice-to-voice stage (turn end detected -> first reply frame sent): p50 {:.1} ms, p99 {:.1} ms",
        histogram_quantile(&start.voice_buckets, &end.voice_buckets, 0.5) * 1000.0,
        histogram_quantile(&start.voice_buckets, &end.voice_buckets, 0.99) * 1000.0
    );
    println!(
        "streams={held} p50_ms={p50:.3} p99_ms={p99:.3} kib_per_call={kib_per_call:.1} added_latency_ms={:.1}",
        percentile(&trigger, 0.5)
    );
}
