//! Call recording (`AgentSpec.recording`, `switchboard_crds::recording`): both legs kept on
//! the call's clock while it lasts, written as one WAV file when it ends and `PUT` to the
//! gateway, which stores it in the tenant's storage.
//!
//! Alignment: the caller's leg is the carrier's inbound audio, appended as it arrives (the
//! carriers stream continuously, silence included, so its length is the call's clock). The
//! agent's audio is placed at the moment its frame is sent, measured on the same clock
//! (milliseconds since the stream started), or right after the agent's previous audio when
//! the pacer sends ahead of real time; the gap before it is silence. Frames the pacer sent
//! ahead of a barge-in (at most `LEAD_FRAMES` × 20 ms) stay in the recording although the
//! carrier dropped them.
//!
//! Memory is bounded: each leg stops growing at the agent's longest call plus the
//! runtime's grace (`switchboard_crds::recording::MAX_RECORDED_SECONDS` at most), 16 KB per
//! second for both legs.

use std::io::Cursor;
use std::time::Duration;

use switchboard_crds::recording::{
    CONTENT_TYPE, MAX_RECORDED_SECONDS, RecordingChannels, SAMPLE_RATE,
};
use tokio_util::sync::CancellationToken;

use crate::config::Secret;

/// Upload attempts before a recording is given up (logged).
const MAX_ATTEMPTS: u32 = 8;
/// Longest a single upload may take (the largest recording is ~460 MB).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Both legs of one call, as 16-bit PCM at [`SAMPLE_RATE`].
#[derive(Debug)]
pub struct Recorder {
    channels: RecordingChannels,
    caller: Vec<i16>,
    agent: Vec<i16>,
    max_samples: usize,
}

impl Recorder {
    /// A recorder for a call of at most `max_seconds` (capped at
    /// [`MAX_RECORDED_SECONDS`]).
    pub fn new(channels: RecordingChannels, max_seconds: u64) -> Self {
        let seconds = max_seconds.min(MAX_RECORDED_SECONDS);
        Self {
            channels,
            caller: Vec::new(),
            agent: Vec::new(),
            max_samples: usize::try_from(seconds * u64::from(SAMPLE_RATE)).unwrap_or(usize::MAX),
        }
    }

    /// Appends the caller's audio as it arrived.
    pub fn caller(&mut self, pcm: &[i16]) {
        let room = self.max_samples.saturating_sub(self.caller.len());
        self.caller.extend_from_slice(&pcm[..pcm.len().min(room)]);
    }

    /// Places agent audio sent at `at` since the stream started (or after the agent's
    /// previous audio, whichever is later).
    pub fn agent(&mut self, at: Duration, pcm: &[i16]) {
        let at = usize::try_from(at.as_millis() * u128::from(SAMPLE_RATE) / 1000)
            .unwrap_or(usize::MAX)
            .min(self.max_samples);
        if self.agent.len() < at {
            self.agent.resize(at, 0);
        }
        let room = self.max_samples.saturating_sub(self.agent.len());
        self.agent.extend_from_slice(&pcm[..pcm.len().min(room)]);
    }

    /// Length of the recording (the longer leg).
    pub fn duration(&self) -> Duration {
        let samples = self.caller.len().max(self.agent.len()) as u64;
        Duration::from_millis(samples * 1000 / u64::from(SAMPLE_RATE))
    }

    /// The WAV file: mono with both legs mixed (clipped at full scale), or two channels with
    /// the caller left and the agent right. The shorter leg ends in silence.
    pub fn wav(&self) -> Result<Vec<u8>, hound::Error> {
        let spec = hound::WavSpec {
            channels: self.channels.count(),
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let frames = self.caller.len().max(self.agent.len());
        let mut out = Cursor::new(Vec::with_capacity(
            44 + frames * 2 * usize::from(spec.channels),
        ));
        {
            let mut writer = hound::WavWriter::new(&mut out, spec)?;
            let at = |leg: &[i16], i: usize| leg.get(i).copied().unwrap_or(0);
            for i in 0..frames {
                let (caller, agent) = (at(&self.caller, i), at(&self.agent, i));
                match self.channels {
                    RecordingChannels::Mixed => {
                        writer.write_sample(caller.saturating_add(agent))?
                    }
                    RecordingChannels::Dual => {
                        writer.write_sample(caller)?;
                        writer.write_sample(agent)?;
                    }
                }
            }
            writer.finalize()?;
        }
        Ok(out.into_inner())
    }
}

/// `PUT`s a recording to `url` until a 2xx, a refusal (4xx other than 408/409/429), or
/// [`MAX_ATTEMPTS`]; returns whether it was stored. Retries are safe: the gateway stores a
/// call's recording once (the same object key, one row per call).
pub async fn upload(
    url: &str,
    token: Option<&Secret>,
    wav: Vec<u8>,
    shutdown: &CancellationToken,
) -> bool {
    let client = reqwest::Client::builder()
        .timeout(UPLOAD_TIMEOUT)
        .build()
        .unwrap_or_default();
    let body = bytes::Bytes::from(wav);
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=MAX_ATTEMPTS {
        let mut request = client
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return true,
            Ok(response)
                if response.status().is_client_error()
                    && !matches!(response.status().as_u16(), 408 | 409 | 429) =>
            {
                let status = response.status();
                let message = response.text().await.unwrap_or_default();
                tracing::error!(%status, %message, "the gateway refused the call's recording");
                return false;
            }
            Ok(response) => {
                tracing::warn!(status = %response.status(), attempt, "recording upload failed")
            }
            Err(error) => tracing::warn!(%error, attempt, "recording upload failed"),
        }
        let wait = if shutdown.is_cancelled() {
            Duration::from_millis(100)
        } else {
            delay
        };
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(wav: &[u8]) -> (hound::WavSpec, Vec<i16>) {
        let mut reader = hound::WavReader::new(Cursor::new(wav)).unwrap();
        let spec = reader.spec();
        (spec, reader.samples::<i16>().map(Result::unwrap).collect())
    }

    #[test]
    fn dual_keeps_each_leg_on_its_channel_at_its_time() {
        let mut recorder = Recorder::new(RecordingChannels::Dual, 60);
        recorder.caller(&[100; 800]); // 100 ms of caller audio
        recorder.agent(Duration::from_millis(50), &[-200; 160]); // 20 ms of agent at 50 ms
        recorder.agent(Duration::from_millis(40), &[-300; 160]); // sent ahead: follows on
        let (spec, samples) = read(&recorder.wav().unwrap());
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        assert_eq!(samples.len(), 800 * 2);
        let caller: Vec<i16> = samples.iter().step_by(2).copied().collect();
        let agent: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
        assert!(caller.iter().all(|&s| s == 100));
        assert!(
            agent[..400].iter().all(|&s| s == 0),
            "silence before the agent spoke"
        );
        assert!(agent[400..560].iter().all(|&s| s == -200));
        assert!(agent[560..720].iter().all(|&s| s == -300));
        assert!(agent[720..].iter().all(|&s| s == 0));
        assert_eq!(recorder.duration(), Duration::from_millis(100));
    }

    #[test]
    fn mixed_sums_both_legs_with_clipping() {
        let mut recorder = Recorder::new(RecordingChannels::Mixed, 60);
        recorder.caller(&[1000, 30_000, 5]);
        recorder.agent(Duration::ZERO, &[-10, 30_000, 0, 7]);
        let (spec, samples) = read(&recorder.wav().unwrap());
        assert_eq!(spec.channels, 1);
        assert_eq!(samples, vec![990, i16::MAX, 5, 7]);
    }

    #[test]
    fn each_leg_is_bounded_by_the_calls_longest_duration() {
        let mut recorder = Recorder::new(RecordingChannels::Dual, 1);
        recorder.caller(&[1; 20_000]);
        recorder.agent(Duration::from_secs(5), &[2; 100]);
        assert_eq!(recorder.caller.len(), 8000);
        assert_eq!(recorder.agent.len(), 8000);
        assert_eq!(recorder.duration(), Duration::from_secs(1));
    }
}
