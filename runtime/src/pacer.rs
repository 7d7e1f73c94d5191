//! Outbound pacing: agent audio leaves in 20 ms frames at real-time pace, with a mark after
//! every spoken segment so the runtime knows what the caller has actually heard.
//!
//! Sending at real time (plus a small lead against network jitter) rather than dumping a whole
//! reply into the carrier's buffer keeps barge-in immediate: `clear` has little to throw away,
//! and "frames sent" is a good estimate of "audio played" for the segment being interrupted.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bytes of one 20 ms G.711 frame at 8 kHz.
pub const FRAME_BYTES: usize = 160;
/// Duration of one frame.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);
/// Frames sent ahead of real time to absorb network jitter.
pub const LEAD_FRAMES: u64 = 3;

/// Something the pacer releases to the carrier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Paced {
    /// One frame of audio belonging to `segment`.
    Frame {
        /// Segment the audio belongs to.
        segment: u64,
        /// Exactly [`FRAME_BYTES`] bytes.
        bytes: Box<[u8; FRAME_BYTES]>,
    },
    /// A mark to send after the audio before it.
    Mark(String),
}

/// Real-time release of queued frames and marks.
#[derive(Debug)]
pub struct Pacer {
    queue: VecDeque<Paced>,
    staging: Vec<u8>,
    staging_segment: u64,
    silence: u8,
    clock: Option<(Instant, u64)>,
}

impl Pacer {
    /// An empty pacer; `silence` is the codec's silence byte used to pad a segment's last frame.
    pub fn new(silence: u8) -> Self {
        Self {
            queue: VecDeque::new(),
            staging: Vec::with_capacity(FRAME_BYTES),
            staging_segment: 0,
            silence,
            clock: None,
        }
    }

    /// True when frames or marks wait to be sent.
    pub fn is_active(&self) -> bool {
        !self.queue.is_empty() || !self.staging.is_empty()
    }

    /// Frames queued (not yet sent).
    pub fn queued_frames(&self) -> usize {
        self.queue
            .iter()
            .filter(|p| matches!(p, Paced::Frame { .. }))
            .count()
    }

    /// Queues encoded audio of `segment`; a partial trailing frame waits for more.
    pub fn push_audio(&mut self, segment: u64, mut bytes: &[u8]) {
        if segment != self.staging_segment {
            self.flush_staging();
            self.staging_segment = segment;
        }
        while !bytes.is_empty() {
            let take = (FRAME_BYTES - self.staging.len()).min(bytes.len());
            self.staging.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.staging.len() == FRAME_BYTES {
                self.flush_staging();
            }
        }
    }

    /// Ends the current segment: pads its last frame and queues a mark after it.
    pub fn push_mark(&mut self, name: String) {
        self.flush_staging();
        self.queue.push_back(Paced::Mark(name));
    }

    fn flush_staging(&mut self) {
        if self.staging.is_empty() {
            return;
        }
        let mut frame = Box::new([self.silence; FRAME_BYTES]);
        frame[..self.staging.len()].copy_from_slice(&self.staging);
        self.staging.clear();
        self.queue.push_back(Paced::Frame {
            segment: self.staging_segment,
            bytes: frame,
        });
    }

    /// Drops everything queued (barge-in).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.staging.clear();
        self.clock = None;
    }

    /// Releases what is due at `now`: frames up to real time plus [`LEAD_FRAMES`], and the
    /// marks that follow them.
    pub fn due(&mut self, now: Instant, out: &mut Vec<Paced>) {
        if self.queue.is_empty() {
            self.flush_staging_if_idle();
        }
        let (start, sent) = *self.clock.get_or_insert((now, 0));
        let elapsed_frames =
            (now.saturating_duration_since(start).as_micros() / FRAME_DURATION.as_micros()) as u64;
        let mut budget = (elapsed_frames + 1 + LEAD_FRAMES).saturating_sub(sent);
        let mut released = 0;
        while let Some(item) = self.queue.front() {
            let is_frame = matches!(item, Paced::Frame { .. });
            if is_frame && budget == 0 {
                break;
            }
            if let Some(item) = self.queue.pop_front() {
                out.push(item);
            }
            if is_frame {
                budget -= 1;
                released += 1;
            }
        }
        if let Some((_, sent)) = self.clock.as_mut() {
            *sent += released;
        }
        // Idle: the next reply starts a fresh clock instead of bursting to "catch up".
        if self.queue.is_empty() {
            self.clock = None;
        }
    }

    /// A segment still being produced may leave a partial frame behind; when nothing else is
    /// queued it is sent padded rather than held indefinitely.
    fn flush_staging_if_idle(&mut self) {
        self.flush_staging();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(items: &[Paced]) -> usize {
        items
            .iter()
            .filter(|p| matches!(p, Paced::Frame { .. }))
            .count()
    }

    #[test]
    fn releases_at_real_time_with_a_small_lead() {
        let mut pacer = Pacer::new(0xFF);
        pacer.push_audio(1, &[1u8; FRAME_BYTES * 50]); // one second
        pacer.push_mark("t1s1".into());
        let start = Instant::now();
        let mut out = Vec::new();
        pacer.due(start, &mut out);
        assert_eq!(frames(&out), 1 + LEAD_FRAMES as usize);
        out.clear();
        pacer.due(start + Duration::from_millis(200), &mut out);
        assert_eq!(frames(&out), 10, "10 more frames after 200 ms");
        out.clear();
        pacer.due(start + Duration::from_millis(2000), &mut out);
        assert_eq!(frames(&out), 50 - 14);
        assert_eq!(out.last(), Some(&Paced::Mark("t1s1".into())));
        assert!(!pacer.is_active());
    }

    #[test]
    fn partial_frames_are_padded_with_silence_at_the_mark() {
        let mut pacer = Pacer::new(0xFF);
        pacer.push_audio(1, &[7u8; 100]);
        pacer.push_audio(1, &[7u8; 100]);
        pacer.push_mark("m".into());
        let mut out = Vec::new();
        pacer.due(Instant::now(), &mut out);
        let Paced::Frame { bytes, .. } = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(bytes[39], 7);
        assert_eq!(bytes[40], 0xFF);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn clear_drops_everything() {
        let mut pacer = Pacer::new(0xFF);
        pacer.push_audio(1, &[1u8; FRAME_BYTES * 10]);
        pacer.push_mark("m".into());
        pacer.clear();
        let mut out = Vec::new();
        pacer.due(Instant::now(), &mut out);
        assert!(out.is_empty());
        assert!(!pacer.is_active());
    }
}
