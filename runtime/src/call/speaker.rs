//! The agent's side of a call: reply audio encoded and paced out in 20 ms frames, a mark after
//! every spoken segment, and what the caller has heard of the current turn when it ends or is
//! interrupted.
//!
//! Socket-free: the call hands it reply audio and carrier marks, asks it for the frames that
//! are due, and sends them.

use std::time::{Duration, Instant};

use switchboard_crds::events::EndReason;

use crate::codec::G711;
use crate::pacer::{FRAME_BYTES, LEAD_FRAMES, Paced, Pacer};
use crate::reply::Finished;

#[derive(Clone, Debug, Default, PartialEq)]
struct Segment {
    text: String,
    total_bytes: usize,
    sent_bytes: usize,
    acked: bool,
}

/// The agent's current turn as the caller hears it.
#[derive(Debug)]
struct AgentSpeech {
    turn: u32,
    segments: Vec<Segment>,
    finished: Option<Box<Finished>>,
    /// When the caller's turn ended (voice-to-voice latency starts here).
    caller_turn_end: Option<Instant>,
    first_audio_at: Option<Instant>,
    hangup_after: Option<EndReason>,
    offset_ms: u64,
}

/// How a turn the speaker starts is described (taken when its first audio or text arrives).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TurnStart {
    /// Milliseconds since the call started.
    pub offset_ms: u64,
    /// When the caller's turn this answers ended.
    pub caller_turn_end: Option<Instant>,
    /// End the call once this turn has been heard.
    pub hangup_after: Option<EndReason>,
}

/// An agent turn that is over, as the transcript records it.
#[derive(Debug)]
pub(crate) struct SpokenTurn {
    /// Everything the agent meant to say.
    pub text: String,
    /// What the caller heard (all of it unless interrupted).
    pub heard: String,
    /// Milliseconds since the call started when the turn began.
    pub offset_ms: u64,
    /// Caller's end of turn → first reply frame sent.
    pub voice_to_voice: Option<Duration>,
    /// The reply's summary, when it completed.
    pub finished: Option<Box<Finished>>,
    /// End the call once heard.
    pub hangup_after: Option<EndReason>,
}

/// Outbound audio of one call.
#[derive(Debug)]
pub(crate) struct Speaker {
    codec: G711,
    pacer: Pacer,
    encoded: Vec<u8>,
    speech: Option<AgentSpeech>,
}

impl Speaker {
    /// A silent speaker for `codec`.
    pub fn new(codec: G711) -> Self {
        Self {
            codec,
            pacer: Pacer::new(codec.silence()),
            encoded: Vec::new(),
            speech: None,
        }
    }

    /// Frames or marks wait to be sent.
    pub fn is_sending(&self) -> bool {
        self.pacer.is_active()
    }

    /// An agent turn is under way (its audio may be out already, waiting for the reply to end).
    pub fn has_turn(&self) -> bool {
        self.speech.is_some()
    }

    /// The pending hang-up of the current turn.
    pub fn hangup_after(&self) -> Option<EndReason> {
        self.speech.as_ref().and_then(|s| s.hangup_after)
    }

    fn speech_for(&mut self, turn: u32, start: TurnStart) -> &mut AgentSpeech {
        self.speech.get_or_insert_with(|| AgentSpeech {
            turn,
            segments: Vec::new(),
            finished: None,
            caller_turn_end: start.caller_turn_end,
            first_audio_at: None,
            hangup_after: start.hangup_after,
            offset_ms: start.offset_ms,
        })
    }

    fn segment(&mut self, turn: u32, segment: u32, start: TurnStart) -> &mut Segment {
        let speech = self.speech_for(turn, start);
        let index = segment as usize;
        if speech.segments.len() <= index {
            speech.segments.resize_with(index + 1, Segment::default);
        }
        &mut speech.segments[index]
    }

    /// Queues reply audio (8 kHz) of `segment` of `turn`.
    pub fn push_audio(&mut self, turn: u32, segment: u32, pcm: &[i16], start: TurnStart) {
        let mut encoded = std::mem::take(&mut self.encoded);
        encoded.clear();
        self.codec.encode_into(pcm, &mut encoded);
        self.segment(turn, segment, start).total_bytes += encoded.len();
        self.pacer.push_audio(segment_key(turn, segment), &encoded);
        self.encoded = encoded;
    }

    /// `segment` is complete and says `text`: a mark follows its audio.
    pub fn end_segment(&mut self, turn: u32, segment: u32, text: String, start: TurnStart) {
        self.segment(turn, segment, start).text = text;
        self.pacer.push_mark(mark_name(turn, segment));
    }

    /// The reply of `turn` is complete; the turn ends once its audio is out.
    pub fn reply_finished(
        &mut self,
        turn: u32,
        finished: Box<Finished>,
        hangup_after: Option<EndReason>,
        start: TurnStart,
    ) {
        let speech = self.speech_for(turn, start);
        speech.finished = Some(finished);
        if hangup_after.is_some() {
            speech.hangup_after = hangup_after;
        }
    }

    /// The carrier played up to mark `name`.
    pub fn on_mark(&mut self, name: &str) {
        let Some((turn, segment)) = parse_mark(name) else {
            return;
        };
        if let Some(speech) = self.speech.as_mut()
            && speech.turn == turn
            && let Some(segment) = speech.segments.get_mut(segment as usize)
        {
            segment.acked = true;
        }
    }

    /// Moves what is due at `now` into `out` (counted as sent). Returns the voice-to-voice
    /// latency when the turn's first frame is among them.
    pub fn due(&mut self, now: Instant, out: &mut Vec<Paced>) -> Option<Duration> {
        let first = out.len();
        self.pacer.due(now, out);
        let mut voice_to_voice = None;
        for item in &out[first..] {
            if let Paced::Frame { segment, .. } = item {
                voice_to_voice = voice_to_voice.or(self.note_sent(*segment, now));
            }
        }
        voice_to_voice
    }

    fn note_sent(&mut self, key: u64, now: Instant) -> Option<Duration> {
        let (turn, segment) = split_key(key);
        let speech = self.speech.as_mut().filter(|s| s.turn == turn)?;
        let mut voice_to_voice = None;
        if speech.first_audio_at.is_none() {
            speech.first_audio_at = Some(now);
            voice_to_voice = speech
                .caller_turn_end
                .map(|end| now.saturating_duration_since(end));
        }
        if let Some(s) = speech.segments.get_mut(segment as usize) {
            s.sent_bytes += FRAME_BYTES;
        }
        voice_to_voice
    }

    /// The reply is complete and all its audio is out.
    pub fn turn_complete(&self) -> bool {
        self.speech.as_ref().is_some_and(|s| s.finished.is_some()) && !self.pacer.is_active()
    }

    /// Drops everything queued (barge-in).
    pub fn clear(&mut self) {
        self.pacer.clear();
    }

    /// Ends the current turn (if any) and reports it.
    pub fn finish(&mut self, interrupted: bool) -> Option<SpokenTurn> {
        let speech = self.speech.take()?;
        let spoken: Vec<&str> = speech.segments.iter().map(|s| s.text.as_str()).collect();
        let text = speech
            .finished
            .as_ref()
            .map(|f| f.text.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| spoken.join(" "));
        let heard = if interrupted {
            heard_text(&speech.segments)
        } else {
            text.clone()
        };
        let voice_to_voice = match (speech.caller_turn_end, speech.first_audio_at) {
            (Some(end), Some(first)) => Some(first.saturating_duration_since(end)),
            _ => None,
        };
        Some(SpokenTurn {
            text,
            heard,
            offset_ms: speech.offset_ms,
            voice_to_voice,
            finished: speech.finished,
            hangup_after: speech.hangup_after,
        })
    }
}

/// What the caller heard of an interrupted turn: acknowledged segments in full, then the
/// share of the next segment that had been sent (less the frames sent ahead of real time).
fn heard_text(segments: &[Segment]) -> String {
    let mut heard = Vec::new();
    for segment in segments {
        if segment.acked {
            heard.push(segment.text.clone());
            continue;
        }
        let lead = LEAD_FRAMES as usize * FRAME_BYTES;
        let played = segment.sent_bytes.saturating_sub(lead);
        if played > 0 && segment.total_bytes > 0 {
            let words: Vec<&str> = segment.text.split_whitespace().collect();
            let share = (played as f64 / segment.total_bytes as f64).min(1.0);
            let count = (words.len() as f64 * share).floor() as usize;
            if count > 0 {
                heard.push(words[..count].join(" "));
            }
        }
        break;
    }
    heard.join(" ")
}

fn segment_key(turn: u32, segment: u32) -> u64 {
    (u64::from(turn) << 32) | u64::from(segment)
}

fn split_key(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

fn mark_name(turn: u32, segment: u32) -> String {
    format!("t{turn}s{segment}")
}

fn parse_mark(name: &str) -> Option<(u32, u32)> {
    let (turn, segment) = name.strip_prefix('t')?.split_once('s')?;
    Some((turn.parse().ok()?, segment.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pacer::FRAME_DURATION;

    fn marks(items: &[Paced]) -> Vec<String> {
        items
            .iter()
            .filter_map(|p| match p {
                Paced::Mark(name) => Some(name.clone()),
                Paced::Frame { .. } => None,
            })
            .collect()
    }

    fn frames(items: &[Paced]) -> usize {
        items.len() - marks(items).len()
    }

    #[test]
    fn marks_round_trip() {
        assert_eq!(parse_mark(&mark_name(3, 7)), Some((3, 7)));
        assert_eq!(parse_mark("nope"), None);
        assert_eq!(split_key(segment_key(5, 9)), (5, 9));
    }

    #[test]
    fn heard_text_counts_acknowledged_and_played_words() {
        let segments = vec![
            Segment {
                text: "Hello there.".into(),
                total_bytes: 1600,
                sent_bytes: 1600,
                acked: true,
            },
            Segment {
                text: "one two three four five six".into(),
                total_bytes: 6000,
                sent_bytes: 3000 + LEAD_FRAMES as usize * FRAME_BYTES,
                acked: false,
            },
            Segment {
                text: "never sent".into(),
                ..Segment::default()
            },
        ];
        assert_eq!(heard_text(&segments), "Hello there. one two three");
    }

    #[test]
    fn a_turn_plays_out_with_marks_and_ends_complete() {
        let mut speaker = Speaker::new(G711::Mulaw);
        let caller_end = Instant::now();
        let start = TurnStart {
            offset_ms: 1200,
            caller_turn_end: Some(caller_end),
            hangup_after: None,
        };
        // Two segments of 100 ms each.
        speaker.push_audio(4, 0, &[1000; 800], start);
        speaker.end_segment(4, 0, "Hello.".into(), start);
        speaker.push_audio(4, 1, &[1000; 800], start);
        speaker.end_segment(4, 1, "Bye.".into(), start);
        speaker.reply_finished(
            4,
            Box::new(Finished {
                turn: 4,
                text: "Hello. Bye.".into(),
                ..Finished::default()
            }),
            Some(EndReason::AgentHangup),
            start,
        );
        assert!(speaker.has_turn() && speaker.is_sending() && !speaker.turn_complete());

        let now = caller_end + Duration::from_millis(250);
        let mut out = Vec::new();
        let latency = speaker.due(now, &mut out);
        assert_eq!(latency, Some(Duration::from_millis(250)), "voice to voice");
        assert_eq!(frames(&out), 1 + LEAD_FRAMES as usize);
        out.clear();
        assert_eq!(speaker.due(now + FRAME_DURATION * 20, &mut out), None);
        assert_eq!(frames(&out), 6);
        assert_eq!(marks(&out), ["t4s0", "t4s1"]);
        assert!(speaker.turn_complete());

        let turn = speaker.finish(false).expect("a turn");
        assert_eq!(turn.text, "Hello. Bye.");
        assert_eq!(turn.heard, "Hello. Bye.");
        assert_eq!(turn.offset_ms, 1200);
        assert_eq!(turn.hangup_after, Some(EndReason::AgentHangup));
        assert_eq!(turn.voice_to_voice, Some(Duration::from_millis(250)));
        assert!(!speaker.has_turn());
        assert!(speaker.finish(false).is_none());
    }

    #[test]
    fn an_interrupted_turn_reports_what_was_heard_and_sends_nothing_more() {
        let mut speaker = Speaker::new(G711::Alaw);
        let start = TurnStart::default();
        speaker.push_audio(1, 0, &[500; 1600], start);
        speaker.end_segment(1, 0, "First sentence here.".into(), start);
        speaker.push_audio(1, 1, &[500; 8000], start);
        speaker.end_segment(
            1,
            1,
            "one two three four five six seven eight".into(),
            start,
        );
        let t0 = Instant::now();
        let mut out = Vec::new();
        // 200 ms of real time: the first segment (10 frames) and a little of the second.
        speaker.due(t0, &mut out);
        speaker.due(t0 + Duration::from_millis(200), &mut out);
        assert_eq!(marks(&out), ["t1s0"]);
        speaker.on_mark("t1s0");
        speaker.on_mark("t0s0"); // a stale mark changes nothing
        speaker.due(t0 + Duration::from_millis(1100), &mut out);
        speaker.clear();
        assert!(!speaker.is_sending());
        out.clear();
        speaker.due(t0 + Duration::from_millis(3000), &mut out);
        assert!(out.is_empty(), "nothing after the clear");
        let turn = speaker.finish(true).expect("a turn");
        assert_eq!(
            turn.text,
            "First sentence here. one two three four five six seven eight"
        );
        // 59 frames out after 1.1 s (real time plus the lead), 10 of them the first segment;
        // of the second segment's 50 frames 49 went out and 46 played (less the lead): 7 of
        // its 8 words.
        assert_eq!(
            turn.heard,
            "First sentence here. one two three four five six seven"
        );
        assert!(turn.finished.is_none());
    }
}
