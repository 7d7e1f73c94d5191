//! `turn-eval`: runs VAD / turn-taking policies over the labelled evaluation corpus and prints
//! what callers feel (false barge-ins, missed and clipped onsets, end-of-turn delay, CPU).
//!
//! The corpus is generated on first use (needs `espeak-ng` and `sox`) into
//! `target/turn-corpus` (or `--dir`), reproducibly from `--seed`, and reused while the seed,
//! size and generator match. See `switchboard_runtime::eval` for the definitions.
//!
//! The last line is for scripts:
//! `default_false_per_min=<x> before_false_per_min=<x> default_soft_clipped_ms=<x> …`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use switchboard_crds::tenant::AgentSpec;
use switchboard_runtime::eval::corpus::{Corpus, CorpusSize};
use switchboard_runtime::eval::{self, Policy, Scores, mean, quantile};
use switchboard_runtime::turn::{EndOfTurnConfig, TurnConfig, TurnTaking};
use switchboard_runtime::vad::{FRAME_MS, VadKind};

#[derive(Parser, Debug)]
#[command(
    name = "turn-eval",
    about = "Turn-taking policies scored on the labelled corpus"
)]
struct Args {
    /// Corpus folder (generated there if missing or made differently).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seed of the corpus.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `full` (about 20 minutes of audio) or `quick`.
    #[arg(long, default_value = "full", value_parser = parse_size)]
    size: CorpusSize,
    /// Generate even if a matching corpus exists.
    #[arg(long)]
    regenerate: bool,
    /// Only policies whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Override the speech probability threshold of the confirmed policies (tuning).
    #[arg(long)]
    threshold: Option<f32>,
    /// Override the confirmation (ms) of the confirmed policies (tuning).
    #[arg(long)]
    confirm_ms: Option<u32>,
    /// Override the mean probability the confirmation window must reach (tuning).
    #[arg(long)]
    confirm_mean: Option<f32>,
    /// Override how long after a turn ends the post-turn confirmation applies, ms; 0 turns
    /// it off (tuning).
    #[arg(long)]
    post_turn_ms: Option<u32>,
    /// Override the primary-talker margin of the post-turn confirmation, dB (tuning).
    #[arg(long)]
    level_margin_db: Option<f32>,
    /// Override the voiced speech the post-turn confirmation needs, ms (tuning).
    #[arg(long)]
    post_confirm_ms: Option<u32>,
    /// Override the mean probability the post-turn confirmation needs (tuning).
    #[arg(long)]
    post_confirm_mean: Option<f32>,
    /// Print frame-level probability quantiles of each detector per group of clips.
    #[arg(long)]
    frames: bool,
    /// End-of-turn silence of the agent (ms), as `endOfTurnSilenceMs`.
    #[arg(long, default_value_t = 700)]
    end_of_turn_ms: u32,
}

fn parse_size(value: &str) -> Result<CorpusSize, String> {
    match value {
        "full" => Ok(CorpusSize::Full),
        "quick" => Ok(CorpusSize::Quick),
        other => Err(format!("unknown size {other:?} (full or quick)")),
    }
}

/// The rows: the runtime's original policy, each VAD with the confirmation window, with and
/// without the adaptive end of turn; the two default rows are exactly `TurnTaking::of` an
/// agent that sets nothing.
fn policies(args: &Args) -> Vec<Policy> {
    let silence = args.end_of_turn_ms;
    let agent = AgentSpec {
        end_of_turn_silence_ms: i32::try_from(silence).unwrap_or(700),
        ..AgentSpec::default()
    };
    let default = TurnTaking::of(&agent);
    let tuned = |vad: VadKind| {
        let mut taking = TurnTaking { vad, ..default };
        if let Some(threshold) = args.threshold {
            taking.detector.threshold = threshold;
        }
        if let Some(confirm) = args.confirm_ms {
            taking.detector = TurnConfig {
                threshold: taking.detector.threshold,
                post_turn: taking.detector.post_turn,
                ..TurnConfig::confirmed(silence, confirm, taking.detector.confirm_mean)
            };
        }
        if let Some(mean) = args.confirm_mean {
            taking.detector.confirm_mean = mean;
        }
        if let Some(post) = taking.detector.post_turn.as_mut() {
            if let Some(window) = args.post_turn_ms {
                post.window_frames = window / FRAME_MS;
            }
            if let Some(margin) = args.level_margin_db {
                post.level_margin_db = margin;
            }
            if let Some(confirm) = args.post_confirm_ms {
                let voiced = (confirm / FRAME_MS).clamp(2, 25);
                post.min_speech_frames = voiced;
                post.confirm_window = (voiced + voiced.div_ceil(4)).min(32);
            }
            if let Some(mean) = args.post_confirm_mean {
                post.confirm_mean = mean;
            }
        }
        taking
    };
    let fixed = |taking: TurnTaking| TurnTaking {
        end_of_turn: EndOfTurnConfig::fixed(silence),
        ..taking
    };
    let original = TurnTaking::original(silence);
    let row = |name: &str, taking: TurnTaking, transcript: bool| Policy {
        name: name.to_owned(),
        taking,
        transcript,
    };
    let mut rows = vec![
        row("energy, original rule (before)", original, false),
        row(
            "energy, original rule + adaptive end of turn",
            TurnTaking {
                end_of_turn: default.end_of_turn,
                ..original
            },
            true,
        ),
        row(
            "energy + confirmation",
            fixed(tuned(VadKind::Energy)),
            false,
        ),
        row(
            "energy + confirmation + adaptive end of turn",
            tuned(VadKind::Energy),
            true,
        ),
        row(
            "neural + confirmation (default, no streaming STT)",
            fixed(tuned(VadKind::Neural)),
            false,
        ),
        row(
            "neural + confirmation + adaptive end of turn (default with Deepgram)",
            tuned(VadKind::Neural),
            true,
        ),
    ];
    if let Some(only) = &args.only {
        rows.retain(|p| p.name.contains(only.as_str()));
    }
    rows
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = args.dir.clone().unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/turn-corpus"
        ))
    });
    let started = std::time::Instant::now();
    let corpus = if args.regenerate {
        Corpus::generate(&dir, args.seed, args.size)
    } else {
        Corpus::load_or_generate(&dir, args.seed, args.size)
    }
    .with_context(|| format!("corpus in {}", dir.display()))?;
    let clips = &corpus.manifest.clips;
    let seconds: f64 = clips
        .iter()
        .map(|c| f64::from(c.duration_ms) / 1000.0)
        .sum();
    let segments: usize = clips.iter().map(|c| c.segments.len()).sum();
    println!(
        "corpus: {} clips, {:.1} min, {segments} speech segments, seed {}, {} ({}; ready in {:.1}s)",
        clips.len(),
        seconds / 60.0,
        corpus.manifest.seed,
        dir.display(),
        corpus.manifest.espeak,
        started.elapsed().as_secs_f64()
    );
    if args.frames {
        for vad in [VadKind::Energy, VadKind::Neural] {
            print_frames(&corpus, vad)?;
        }
    }
    let mut all = Vec::new();
    for policy in policies(&args) {
        all.push(eval::evaluate(&corpus, &policy)?);
    }
    print_table(&all);
    print_categories(&all);
    print_summary(&all);
    Ok(())
}

fn print_frames(corpus: &Corpus, vad: VadKind) -> anyhow::Result<()> {
    println!();
    println!(
        "| {} VAD: frame probabilities | speech frames p10 / p50, share ≥ 0.5 | non-speech frames p50 / p90 / p99, share ≥ 0.5 |",
        vad.name()
    );
    println!("| --- | --- | --- |");
    let share = |v: &[f64]| v.iter().filter(|p| **p >= 0.5).count() as f64 / v.len().max(1) as f64;
    for group in eval::frame_stats(corpus, vad)? {
        println!(
            "| {} | {:.2} / {:.2}, {:.0}% | {:.2} / {:.2} / {:.2}, {:.1}% |",
            group.label,
            quantile(&group.speech, 0.1),
            quantile(&group.speech, 0.5),
            share(&group.speech) * 100.0,
            quantile(&group.non_speech, 0.5),
            quantile(&group.non_speech, 0.9),
            quantile(&group.non_speech, 0.99),
            share(&group.non_speech) * 100.0,
        );
    }
    Ok(())
}

fn print_table(all: &[Scores]) {
    println!();
    println!(
        "| policy | false barge-ins / min non-speech | non-speech held as speech | missed onsets (soft) | clipped at onset, mean / p95 ms (soft) | turns cut mid-pause | end of turn p50 / p95 ms (never ended) | CPU µs per stream-second |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for s in all {
        println!(
            "| {} | {:.2} ({} in {:.1} min) | {:.1}% | {}/{} ({}/{}) | {:.0} / {:.0} ({:.0} / {:.0}) | {}/{} | {:.0} / {:.0} ({}) | {:.1} |",
            s.policy,
            s.false_per_minute(),
            s.false_total(),
            s.non_speech_minutes,
            s.held_share() * 100.0,
            s.missed,
            s.onsets,
            s.soft_missed,
            s.soft_onsets,
            mean(&s.clipped_ms),
            quantile(&s.clipped_ms, 0.95),
            mean(&s.soft_clipped_ms),
            quantile(&s.soft_clipped_ms, 0.95),
            s.cut_turns,
            s.paused_turns,
            quantile(&s.end_delay_ms, 0.5),
            quantile(&s.end_delay_ms, 0.95),
            s.unended,
            s.cpu_us_per_stream_second(),
        );
    }
}

fn print_categories(all: &[Scores]) {
    let Some(first) = all.first() else {
        return;
    };
    println!();
    print!("| false barge-ins by audio |");
    for s in all {
        print!(" {} |", s.policy);
    }
    println!();
    println!("| --- |{}", " --- |".repeat(all.len()));
    for (label, _) in &first.false_barge_ins {
        print!("| {label} |");
        for s in all {
            let n = s
                .false_barge_ins
                .iter()
                .find(|(l, _)| l == label)
                .map_or(0, |(_, n)| *n);
            print!(" {n} |");
        }
        println!();
    }
}

fn print_summary(all: &[Scores]) {
    let find = |needle: &str| all.iter().find(|s| s.policy.contains(needle));
    let (Some(before), Some(default)) = (find("(before)"), find("(default with Deepgram)")) else {
        return;
    };
    let plain = find("(default, no streaming STT)");
    println!();
    println!(
        "before_false_per_min={:.3} default_false_per_min={:.3} reduction={:.1}x before_soft_clipped_ms={:.1} default_soft_clipped_ms={:.1} before_eot_p50_ms={:.0} default_eot_p50_ms={:.0} default_no_stt_eot_p50_ms={:.0}",
        before.false_per_minute(),
        default.false_per_minute(),
        before.false_per_minute() / default.false_per_minute().max(1e-9),
        mean(&before.soft_clipped_ms),
        mean(&default.soft_clipped_ms),
        quantile(&before.end_delay_ms, 0.5),
        quantile(&default.end_delay_ms, 0.5),
        plain.map_or(f64::NAN, |s| quantile(&s.end_delay_ms, 0.5)),
    );
}
