//! The turn-taking evaluation: any VAD / turn policy run over the labelled [`corpus`] through
//! the call's own listener (the code a live call runs, fed the same μ-law frames), scored by
//! what callers feel:
//!
//! - false barge-ins: speech confirmed where there is none, per minute of non-speech (each
//!   would cut the agent off, or start a turn for noise);
//! - missed onsets: caller speech never confirmed;
//! - clipped speech: ms of a speech onset before the turn's audio starts (lost to the STT);
//! - end-of-turn delay: from the caller's last word to the end of their turn (p50, p95), and
//!   turns cut while the caller paused mid-sentence;
//! - CPU per stream-second: the listener's CPU time (this thread's, not wall time) per second
//!   of audio.
//!
//! A policy "with transcript" gets the words a streaming STT would send, simulated from the
//! corpus' own text (see [`simulated_transcript`]); without, it runs on audio alone.
//!
//! With `TURN_EVAL_DEBUG` set, each missed segment and false barge-in is listed on stderr.

pub mod corpus;
pub mod sounds;

use std::sync::Arc;

use crate::call::listener::{Heard, Listener};
use crate::codec::G711;
use crate::providers::stt::PerTurnStt;
use crate::providers::{Stt, SttEvent};
use crate::turn::TurnTaking;
use crate::vad::{FRAME_MS, FRAME_SAMPLES};
use corpus::{Clip, ClipKind, Corpus, CorpusError};

/// Speech confirmed this long after a segment ends still counts as that segment's.
const HIT_TOLERANCE_MS: u32 = 300;
/// Latency of the simulated STT's interim words after the speech they cover.
pub const SIM_INTERIM_MS: u32 = 150;
/// Latency of its final words (`speech_final`) after the speech ends, beyond endpointing.
pub const SIM_FINAL_MS: u32 = 100;
/// Its utterance-end gap, plus latency.
pub const SIM_UTTERANCE_END_MS: u32 = 1000 + 100;

/// A policy under evaluation.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Row name.
    pub name: String,
    /// The turn-taking settings.
    pub taking: TurnTaking,
    /// Feed the simulated streaming transcript.
    pub transcript: bool,
}

/// A timed STT event of the simulated transcript.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedEvent {
    /// When it reaches the runtime (ms of audio).
    pub at_ms: u32,
    /// The event.
    pub event: SttEvent,
}

/// The words a streaming STT with `endpointing_ms` would report for `clip`: each segment's
/// words as an interim result shortly after they are spoken, then final with `speech_final`
/// once endpointing silence has passed, and an utterance end a second later unless the caller
/// has spoken again by then. Idealised (every word recognised, fixed latencies): the
/// evaluation measures the turn policy, not an STT.
pub fn simulated_transcript(clip: &Clip, endpointing_ms: u32) -> Vec<TimedEvent> {
    let mut events = Vec::new();
    for (index, segment) in clip.segments.iter().enumerate() {
        let end_ms = u64::from(segment.end_ms);
        events.push(TimedEvent {
            at_ms: segment.end_ms + SIM_INTERIM_MS,
            event: SttEvent::Words {
                text: segment.text.clone(),
                is_final: false,
                speech_final: false,
                end_ms,
            },
        });
        let next_start = clip
            .segments
            .get(index + 1)
            .map_or(u32::MAX, |s| s.start_ms);
        let final_at = segment.end_ms + endpointing_ms + SIM_FINAL_MS;
        events.push(TimedEvent {
            at_ms: final_at,
            event: SttEvent::Words {
                text: segment.text.clone(),
                is_final: true,
                speech_final: final_at < next_start,
                end_ms,
            },
        });
        if segment.end_ms + 1000 < next_start {
            events.push(TimedEvent {
                at_ms: segment.end_ms + SIM_UTTERANCE_END_MS,
                event: SttEvent::UtteranceEnd {
                    last_word_end_ms: end_ms,
                },
            });
        }
    }
    events.sort_by_key(|e| e.at_ms);
    events
}

/// What a policy did on one clip, in time order (ms at the end of the frame that caused it).
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Speech confirmed: (time, where the utterance's audio starts).
    pub speech_started: Vec<(u32, u32)>,
    /// Turn ends.
    pub turn_ended: Vec<u32>,
    /// Per frame: was speech confirmed (between start and end of a turn)?
    pub speaking: Vec<bool>,
    /// CPU time of the run (seconds).
    pub cpu_seconds: f64,
}

/// Runs `policy` over one clip's μ-law audio, frame by frame as a carrier sends it.
pub fn run_clip(policy: &Policy, clip: &Clip, ulaw: &[u8]) -> Trace {
    let stt = Arc::new(PerTurnStt(Stt::Builtin));
    let mut listener = Listener::new(&policy.taking, stt);
    let events = if policy.transcript {
        simulated_transcript(
            clip,
            policy
                .taking
                .end_of_turn
                .wait_ms(crate::turn::Cue::Complete),
        )
    } else {
        Vec::new()
    };
    let mut next_event = 0;
    let mut trace = Trace {
        speaking: Vec::with_capacity(ulaw.len() / FRAME_SAMPLES),
        ..Trace::default()
    };
    let mut heard = Vec::new();
    let cpu_start = thread_cpu_seconds();
    for (index, frame) in ulaw.chunks(FRAME_SAMPLES).enumerate() {
        let now = (index as u32 + 1) * FRAME_MS;
        while let Some(timed) = events.get(next_event).filter(|e| e.at_ms <= now) {
            listener.on_stt_event(timed.event.clone(), &mut heard);
            next_event += 1;
        }
        listener.on_media(G711::Mulaw, frame, &mut heard);
        for event in heard.drain(..) {
            match event {
                Heard::SpeechStarted => trace
                    .speech_started
                    .push((now, listener.utterance_start_ms() as u32)),
                Heard::TurnEnded(_) => trace.turn_ended.push(now),
            }
        }
        trace.speaking.push(listener.is_speaking());
    }
    trace.cpu_seconds = thread_cpu_seconds() - cpu_start;
    trace
}

/// CPU time (user + system) of the calling thread in seconds, to the nanosecond: the
/// machine may be busy, so wall time would measure the neighbours too.
pub fn thread_cpu_seconds() -> f64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through a valid pointer to a local.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    if status != 0 {
        return 0.0;
    }
    time.tv_sec as f64 + time.tv_nsec as f64 / 1e9
}

/// Figures of one policy over a corpus.
#[derive(Clone, Debug, Default)]
pub struct Scores {
    /// Row name.
    pub policy: String,
    /// Minutes without speech (segments and their tolerance excluded).
    pub non_speech_minutes: f64,
    /// Speech confirmed outside any speech, by clip description.
    pub false_barge_ins: Vec<(String, u32)>,
    /// Frames outside speech (and its tolerance).
    pub non_speech_frames: u64,
    /// Of those, frames the policy held as the caller speaking (a turn that never ends in
    /// noise hides its false barge-ins but keeps the agent waiting).
    pub held_frames: u64,
    /// Speech segments.
    pub onsets: u32,
    /// Segments never confirmed.
    pub missed: u32,
    /// Soft-speech segments and those never confirmed.
    pub soft_onsets: u32,
    /// Soft-speech segments never confirmed.
    pub soft_missed: u32,
    /// ms lost at each confirmed onset that started an utterance.
    pub clipped_ms: Vec<f64>,
    /// The same, soft speech only.
    pub soft_clipped_ms: Vec<f64>,
    /// ms from the last word of a turn to its end.
    pub end_delay_ms: Vec<f64>,
    /// Turns that never ended before the caller spoke again (or the clip ended).
    pub unended: u32,
    /// Caller turns.
    pub turns: u32,
    /// Turns with a mid-turn pause.
    pub paused_turns: u32,
    /// Turns cut before the caller finished.
    pub cut_turns: u32,
    /// CPU seconds spent.
    pub cpu_seconds: f64,
    /// Seconds of audio processed.
    pub audio_seconds: f64,
}

impl Scores {
    /// Total false barge-ins.
    pub fn false_total(&self) -> u32 {
        self.false_barge_ins.iter().map(|(_, n)| n).sum()
    }

    /// False barge-ins per minute of non-speech.
    pub fn false_per_minute(&self) -> f64 {
        f64::from(self.false_total()) / self.non_speech_minutes.max(1e-9)
    }

    /// Share of non-speech time held as the caller speaking.
    pub fn held_share(&self) -> f64 {
        self.held_frames as f64 / self.non_speech_frames.max(1) as f64
    }

    /// CPU microseconds per second of audio (one stream).
    pub fn cpu_us_per_stream_second(&self) -> f64 {
        self.cpu_seconds / self.audio_seconds.max(1e-9) * 1e6
    }
}

/// `q` quantile of `values` (nearest rank), NaN when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Mean of `values`, NaN when empty.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Scores `trace` of `clip` into `scores`.
pub fn score_clip(clip: &Clip, trace: &Trace, scores: &mut Scores) {
    let duration = clip.duration_ms;
    scores.audio_seconds += f64::from(duration) / 1000.0;
    scores.cpu_seconds += trace.cpu_seconds;
    let covered: u32 = clip
        .segments
        .iter()
        .map(|s| (s.end_ms + HIT_TOLERANCE_MS).min(duration) - s.start_ms.min(duration))
        .sum();
    scores.non_speech_minutes += f64::from(duration.saturating_sub(covered)) / 60_000.0;

    let within = |t: u32| {
        clip.segments
            .iter()
            .position(|s| t >= s.start_ms && t <= s.end_ms + HIT_TOLERANCE_MS)
    };
    // False barge-ins, and the onsets that started an utterance.
    let mut false_here = 0;
    let mut started_at: Vec<Option<u32>> = vec![None; clip.segments.len()];
    for (t, utterance_start) in &trace.speech_started {
        match within(*t) {
            Some(segment) => {
                started_at[segment].get_or_insert(*utterance_start);
            }
            None => {
                if std::env::var_os("TURN_EVAL_DEBUG").is_some() {
                    eprintln!("false: {} at {t} ms", clip.name);
                }
                false_here += 1
            }
        }
    }
    let label = match clip.kind {
        ClipKind::NonSpeech => clip.description.clone(),
        ClipKind::Speech if clip.soft => "between turns: soft speech clips".to_owned(),
        ClipKind::Speech => "between turns: speech clips".to_owned(),
        ClipKind::Mixture => "between turns: mixtures".to_owned(),
    };
    match scores.false_barge_ins.iter_mut().find(|(l, _)| *l == label) {
        Some((_, n)) => *n += false_here,
        None => scores.false_barge_ins.push((label, false_here)),
    }

    for (index, speaking) in trace.speaking.iter().enumerate() {
        let t = index as u32 * FRAME_MS;
        let near = clip
            .segments
            .iter()
            .any(|s| t + FRAME_MS >= s.start_ms && t <= s.end_ms + HIT_TOLERANCE_MS);
        if !near {
            scores.non_speech_frames += 1;
            scores.held_frames += u64::from(*speaking);
        }
    }

    // Onsets: confirmed at some point of the segment (or just after)?
    for (index, segment) in clip.segments.iter().enumerate() {
        let from = (segment.start_ms / FRAME_MS) as usize;
        let to = ((segment.end_ms + HIT_TOLERANCE_MS) / FRAME_MS) as usize;
        let detected = trace
            .speaking
            .get(from..to.min(trace.speaking.len()))
            .is_some_and(|frames| frames.iter().any(|s| *s));
        scores.onsets += 1;
        if clip.soft {
            scores.soft_onsets += 1;
        }
        if !detected {
            if std::env::var_os("TURN_EVAL_DEBUG").is_some() {
                eprintln!(
                    "missed: {} {:?} at {} ms",
                    clip.name, segment.text, segment.start_ms
                );
            }
            scores.missed += 1;
            if clip.soft {
                scores.soft_missed += 1;
            }
            continue;
        }
        if let Some(start) = started_at[index] {
            let clipped = f64::from(start.saturating_sub(segment.start_ms));
            scores.clipped_ms.push(clipped);
            if clip.soft {
                scores.soft_clipped_ms.push(clipped);
            }
        }
    }

    // Turns: their end, and cuts while the caller paused.
    let mut turn = 0;
    while let Some(first) = clip.segments.iter().position(|s| s.turn == turn) {
        let last = clip
            .segments
            .iter()
            .rposition(|s| s.turn == turn)
            .unwrap_or(first);
        let start = clip.segments[first].start_ms;
        let end = clip.segments[last].end_ms;
        let next_start = clip.segments.get(last + 1).map_or(duration, |s| s.start_ms);
        scores.turns += 1;
        if last > first {
            scores.paused_turns += 1;
        }
        if trace.turn_ended.iter().any(|t| *t > start && *t < end) {
            scores.cut_turns += 1;
        }
        match trace
            .turn_ended
            .iter()
            .find(|t| **t >= end && **t < next_start)
        {
            Some(t) => scores.end_delay_ms.push(f64::from(t - end)),
            None => scores.unended += 1,
        }
        turn += 1;
    }
}

/// Runs `policy` over every clip of `corpus`.
pub fn evaluate(corpus: &Corpus, policy: &Policy) -> Result<Scores, CorpusError> {
    let mut scores = Scores {
        policy: policy.name.clone(),
        ..Scores::default()
    };
    for clip in &corpus.manifest.clips {
        let audio = corpus.audio(clip)?;
        let trace = run_clip(policy, clip, &audio);
        score_clip(clip, &trace, &mut scores);
    }
    Ok(scores)
}

/// Frame-level view of a detector on one group of clips: how its probabilities fall on
/// frames inside speech and outside it.
#[derive(Clone, Debug, Default)]
pub struct FrameStats {
    /// Group (clip kind and description).
    pub label: String,
    /// Probabilities of frames inside speech segments.
    pub speech: Vec<f64>,
    /// Probabilities of frames outside them (segments' tolerance excluded).
    pub non_speech: Vec<f64>,
}

/// Per-group frame probabilities of a fresh `vad` per clip (for tuning thresholds).
pub fn frame_stats(
    corpus: &Corpus,
    vad: crate::vad::VadKind,
) -> Result<Vec<FrameStats>, CorpusError> {
    let mut groups: Vec<FrameStats> = Vec::new();
    for clip in &corpus.manifest.clips {
        let label = match clip.kind {
            ClipKind::NonSpeech => clip.description.clone(),
            ClipKind::Speech => format!("speech at {} dBFS", clip.speech_dbfs.unwrap_or(0.0)),
            ClipKind::Mixture => clip.name.split('-').take(3).collect::<Vec<_>>().join("-"),
        };
        let audio = corpus::decode(&corpus.audio(clip)?);
        let mut detector = vad.detector();
        let index = match groups.iter().position(|g| g.label == label) {
            Some(index) => index,
            None => {
                groups.push(FrameStats {
                    label,
                    ..FrameStats::default()
                });
                groups.len() - 1
            }
        };
        for (n, frame) in audio.chunks(FRAME_SAMPLES).enumerate() {
            let p = f64::from(detector.speech_probability(frame));
            let t = n as u32 * FRAME_MS + FRAME_MS / 2;
            let inside = clip
                .segments
                .iter()
                .any(|s| t >= s.start_ms && t <= s.end_ms);
            let near = clip
                .segments
                .iter()
                .any(|s| t + HIT_TOLERANCE_MS >= s.start_ms && t <= s.end_ms + HIT_TOLERANCE_MS);
            if inside {
                groups[index].speech.push(p);
            } else if !near {
                groups[index].non_speech.push(p);
            }
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::corpus::Segment;
    use super::*;

    fn clip(segments: Vec<Segment>, duration_ms: u32) -> Clip {
        Clip {
            name: "t".into(),
            kind: ClipKind::Speech,
            description: "test".into(),
            duration_ms,
            speech_dbfs: Some(-24.0),
            soft: false,
            snr_db: None,
            segments,
        }
    }

    fn segment(start_ms: u32, end_ms: u32, text: &str, turn: u32, ends_turn: bool) -> Segment {
        Segment {
            start_ms,
            end_ms,
            text: text.into(),
            turn,
            ends_turn,
        }
    }

    #[test]
    fn the_simulated_transcript_follows_the_segments() {
        let clip = clip(
            vec![
                segment(1000, 2000, "book a table and", 0, false),
                segment(2600, 3000, "for two.", 0, true),
            ],
            6000,
        );
        let events = simulated_transcript(&clip, 300);
        let times: Vec<u32> = events.iter().map(|e| e.at_ms).collect();
        // Interim, final (speech_final too late: the caller spoke again), no utterance end in
        // a 600 ms pause; then the second segment's interim, final and utterance end.
        assert_eq!(times, vec![2150, 2400, 3150, 3400, 4100]);
        assert!(matches!(
            events[1].event,
            SttEvent::Words {
                speech_final: true,
                ..
            }
        ));
        assert!(matches!(events[4].event, SttEvent::UtteranceEnd { .. }));
    }

    #[test]
    fn scoring_counts_false_starts_misses_clipping_cuts_and_delays() {
        let clip = clip(
            vec![
                segment(1000, 2000, "book a table and", 0, false),
                segment(3000, 3400, "for two.", 0, true),
                segment(6000, 6400, "Stop.", 1, true),
            ],
            10_000,
        );
        let mut speaking = vec![false; 500];
        speaking[60..100].iter_mut().for_each(|s| *s = true); // 1.2–2.0 s
        speaking[155..180].iter_mut().for_each(|s| *s = true); // 3.1–3.6 s
        let trace = Trace {
            // Speech at 1.2 s (audio from 1.05 s), again at 3.1 s after a cut at 2.8 s, and a
            // false start at 8 s; "Stop." is missed.
            speech_started: vec![(1200, 1050), (3100, 2900), (8000, 7800)],
            turn_ended: vec![2800, 3900],
            speaking,
            cpu_seconds: 0.01,
        };
        let mut scores = Scores::default();
        score_clip(&clip, &trace, &mut scores);
        assert_eq!(scores.false_total(), 1);
        assert_eq!(scores.onsets, 3);
        assert_eq!(scores.missed, 1);
        assert_eq!(scores.clipped_ms, vec![50.0, 0.0]);
        assert_eq!(scores.turns, 2);
        assert_eq!(scores.paused_turns, 1);
        assert_eq!(scores.cut_turns, 1);
        assert_eq!(scores.end_delay_ms, vec![500.0]);
        assert_eq!(scores.unended, 1);
        // 10 s less 1.3 + 0.7 + 0.7 s of speech and tolerance.
        assert!((scores.non_speech_minutes - 7.3 / 60.0).abs() < 1e-9);
        assert!((scores.false_per_minute() - 60.0 / 7.3).abs() < 1e-9);
        assert!((scores.cpu_us_per_stream_second() - 1000.0).abs() < 1e-6);
    }
}
