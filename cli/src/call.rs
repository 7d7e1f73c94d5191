//! `switchboard call`: one simulated inbound call, played exactly as Twilio plays it.
//!
//! 1. POST the signed voice webhook; read the TwiML answer.
//! 2. On `<Connect><Stream>`, open the media WebSocket and send `connected` and `start`
//!    (the TwiML `<Parameter>`s as `customParameters`).
//! 3. Every 20 ms send one 160-byte μ-law frame of the caller (the WAV, then the requested
//!    silence, then line silence while waiting), and "play" 20 ms of the agent's audio from a
//!    playback buffer: marks are echoed when the audio queued before them has played, `clear`
//!    empties the buffer and echoes the pending marks, as Twilio does.
//! 4. Hang up (`stop`) once the caller's audio is done and the agent has been quiet for the
//!    idle time, or stop when the server closes the stream.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use serde::Serialize;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::audio::{self, FRAME_MS, FRAME_SAMPLES};
use crate::media::{ServerMessage, StreamWriter, parse_server};
use crate::progress::Progress;
use crate::twiml::{self, Answer, Refusal, StreamTarget, TwimlError};
use crate::webhook::{
    InboundCall, WebhookError, WebhookTarget, post_status_callback, post_voice_webhook, twilio_sid,
};

/// How long the WebSocket handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the server's close frame after ours.
const CLOSE_GRACE: Duration = Duration::from_millis(500);
/// A pause in the agent's media this long ends one agent turn; the next media starts another.
/// Runtimes stream speech at real-time pace (a frame every 20 ms), so 300 ms is a real pause.
const TURN_GAP: Duration = Duration::from_millis(300);

/// Everything a simulated call needs.
#[derive(Clone, Debug)]
pub struct CallOptions {
    /// Where the voice webhook goes and how it is signed.
    pub webhook: WebhookTarget,
    /// Caller number.
    pub from: String,
    /// Dialled number.
    pub to: String,
    /// `AccountSid` to present (random when `None`).
    pub account_sid: Option<String>,
    /// The caller's audio, 8 kHz 16-bit.
    pub caller_audio: Vec<i16>,
    /// Silence appended after the caller's audio so end-of-turn detection fires.
    pub trailing_silence_seconds: f64,
    /// Hang up when the agent has been quiet this long after the caller's audio is done.
    pub idle_seconds: f64,
    /// Hang up after this long whatever happens.
    pub max_seconds: f64,
    /// Connect here instead of the TwiML's stream URL (a gateway behind a proxy).
    pub media_url: Option<String>,
    /// Send the `completed` status callback after the call, as Twilio does for numbers with a
    /// status callback URL (the gateway configures one on every number).
    pub status_callback: bool,
}

/// Why a call could not be simulated.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The webhook failed.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// The webhook's answer is not usable TwiML.
    #[error(transparent)]
    Twiml(#[from] TwimlError),
    /// The gateway refused the call (not an error of the tool, but not a connected call).
    #[error("call refused: {}", .0.describe())]
    Refused(Refusal),
    /// The media WebSocket could not be opened.
    #[error("cannot open the media stream {url}")]
    Connect {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<tungstenite::Error>,
    },
    /// The media WebSocket failed mid-call.
    #[error("media stream failed")]
    Stream(#[from] Box<tungstenite::Error>),
    /// The agent's audio could not be saved.
    #[error(transparent)]
    Audio(#[from] audio::AudioError),
}

/// Who ended the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EndedBy {
    /// We hung up after the agent went quiet.
    Caller,
    /// The server closed the stream.
    Agent,
    /// `max_seconds` elapsed.
    Timeout,
}

/// One moment of the call, for the timeline.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEvent {
    /// Milliseconds since the media stream opened.
    pub at_ms: u64,
    /// What happened.
    pub what: String,
}

/// A transcript line, sent on the stream or read from the gateway's call record.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptLine {
    /// Milliseconds since the media stream opened.
    #[serde(alias = "offsetMs")]
    pub at_ms: u64,
    /// Who spoke, when said.
    pub role: Option<String>,
    /// The words.
    pub text: String,
}

/// What happened on a call.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallReport {
    /// Always `connected` (refusals are [`CallError::Refused`]).
    pub outcome: &'static str,
    /// `CA…`.
    pub call_sid: String,
    /// `MZ…`.
    pub stream_sid: String,
    /// The media WebSocket URL used.
    pub stream_url: String,
    /// Names of the stream parameters the gateway passed (values may be secrets).
    pub stream_parameters: Vec<String>,
    /// The tenant the gateway routed the call to (its `tenant` stream parameter).
    pub tenant: Option<String>,
    /// The gateway's call id (its `callId` stream parameter).
    pub gateway_call_id: Option<String>,
    /// Who ended the call.
    pub ended_by: EndedBy,
    /// Time the webhook took to answer.
    pub webhook_ms: u64,
    /// Length of the caller's audio (the WAV).
    pub caller_audio_ms: u64,
    /// 20 ms frames sent (audio, appended silence and line silence).
    pub frames_sent: u64,
    /// `media` messages received from the agent.
    pub agent_messages: u64,
    /// Agent audio played to the caller (and saved).
    pub agent_audio_ms: u64,
    /// First agent audio, since the stream opened.
    pub first_agent_audio_ms: Option<u64>,
    /// From the end of the caller's audio to the first agent turn that began after it (the
    /// response latency; a greeting or a turn already under way does not count).
    pub response_latency_ms: Option<u64>,
    /// Agent turns: bursts of agent media separated by pauses of 300 ms or more.
    pub agent_turns: u64,
    /// Stream open to hang-up.
    pub total_ms: u64,
    /// Marks echoed back, in order.
    pub marks: Vec<String>,
    /// `clear` messages received.
    pub clears: u64,
    /// Agent audio dropped by `clear` (or left unplayed at hang-up).
    pub dropped_audio_ms: u64,
    /// Transcript lines, if the server sent any.
    pub transcript: Vec<TranscriptLine>,
    /// What happened when.
    pub timeline: Vec<TimelineEvent>,
    /// Protocol problems noticed (wrong streamSid, binary frames, bad messages).
    pub warnings: Vec<String>,
    /// Where the agent's audio was saved.
    pub out: Option<String>,
    /// Whether the `completed` status callback was accepted (`None`: not sent).
    pub status_callback_accepted: Option<bool>,
}

impl CallReport {
    /// The closing line for people.
    pub fn summary_line(&self) -> String {
        let first = self.first_agent_audio_ms.map_or_else(
            || "no agent audio".to_owned(),
            |ms| format!("first agent audio after {}", seconds(ms)),
        );
        let latency = self
            .response_latency_ms
            .map(|ms| format!(", reply {} after your audio ended", seconds(ms)))
            .unwrap_or_default();
        let ended = match self.ended_by {
            EndedBy::Caller => "you hung up",
            EndedBy::Agent => "the agent hung up",
            EndedBy::Timeout => "time limit reached",
        };
        let saved = self
            .out
            .as_deref()
            .map(|p| format!(" -> {p}"))
            .unwrap_or_default();
        format!(
            "call {} done in {} ({ended}): sent {} of audio, heard {} of agent audio ({}); {first}{latency}; {}, {}{saved}",
            self.call_sid,
            seconds(self.total_ms),
            seconds(self.caller_audio_ms),
            seconds(self.agent_audio_ms),
            count(self.agent_turns, "turn"),
            count(self.marks.len() as u64, "mark"),
            count(self.clears, "clear"),
        )
    }
}

/// `1 mark`, `2 marks`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

fn parameter(parameters: &[(String, String)], name: &str) -> Option<String> {
    parameters
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Places the call and returns what happened; `out` receives the agent's audio.
pub async fn run(
    options: &CallOptions,
    out: Option<&std::path::Path>,
    progress: &Progress,
) -> Result<CallReport, CallError> {
    let call = InboundCall::new(&options.from, &options.to, options.account_sid.as_deref());
    progress.start_spinner(&format!("calling {} (webhook)", options.to));
    let http = reqwest::Client::new();
    let asked = Instant::now();
    let twiml = post_voice_webhook(&http, &options.webhook, &call.voice_parameters()).await?;
    let webhook_ms = millis(asked.elapsed());
    let target = match twiml::parse(&twiml)? {
        Answer::Stream(target) => target,
        Answer::Refused(refusal) => {
            progress.finish();
            return Err(CallError::Refused(refusal));
        }
    };
    progress.note(&format!(
        "webhook answered in {} with <Connect><Stream url=\"{}\"> ({} parameters)",
        seconds(webhook_ms),
        target.url,
        target.parameters.len()
    ));
    for said in &target.said {
        progress.note(&format!("gateway said: {said}"));
    }
    let mut session =
        MediaSession::open(options, call.clone(), &target, webhook_ms, progress).await?;
    session.converse(options).await?;
    let mut report = session.finish().await;
    if options.status_callback {
        let params = call.completed_parameters(report.report.total_ms);
        let sent = post_status_callback(&http, &options.webhook, &params).await;
        if let Err(error) = &sent {
            let warning = format!("status callback failed: {error}");
            progress.note(&format!("warning: {warning}"));
            report.report.warnings.push(warning);
        }
        report.report.status_callback_accepted = Some(sent.is_ok());
    }
    if let Some(path) = out {
        audio::write_wav_8k(path, &report.recorded)?;
        report.report.out = Some(path.display().to_string());
    }
    // The caller finishes `progress`: it may still show work (reading the transcript).
    Ok(report.report)
}

/// Agent audio and marks waiting to be "played" to the caller.
#[derive(Debug, Default)]
struct Playback {
    queue: VecDeque<Queued>,
}

#[derive(Debug)]
enum Queued {
    Audio { bytes: Vec<u8>, played: usize },
    Mark(String),
}

impl Playback {
    fn push_audio(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.queue.push_back(Queued::Audio { bytes, played: 0 });
        }
    }

    /// Queues a mark; answers the marks reached at once (nothing left to play before them).
    fn push_mark(&mut self, name: String) -> Vec<String> {
        self.queue.push_back(Queued::Mark(name));
        self.reached_marks()
    }

    /// Plays up to one frame into `heard`; answers the marks reached.
    fn play_frame(&mut self, heard: &mut Vec<u8>) -> Vec<String> {
        let mut budget = FRAME_SAMPLES;
        let mut marks = self.reached_marks();
        while budget > 0 {
            let Some(Queued::Audio { bytes, played }) = self.queue.front_mut() else {
                break;
            };
            let take = budget.min(bytes.len() - *played);
            heard.extend_from_slice(&bytes[*played..*played + take]);
            *played += take;
            budget -= take;
            if *played == bytes.len() {
                self.queue.pop_front();
            }
            marks.extend(self.reached_marks());
        }
        marks
    }

    fn reached_marks(&mut self) -> Vec<String> {
        let mut marks = Vec::new();
        while let Some(Queued::Mark(_)) = self.queue.front() {
            if let Some(Queued::Mark(name)) = self.queue.pop_front() {
                marks.push(name);
            }
        }
        marks
    }

    /// Drops every queued sample; answers the bytes dropped and the pending marks.
    fn clear(&mut self) -> (usize, Vec<String>) {
        let mut dropped = 0;
        let mut marks = Vec::new();
        for item in self.queue.drain(..) {
            match item {
                Queued::Audio { bytes, played } => dropped += bytes.len() - played,
                Queued::Mark(name) => marks.push(name),
            }
        }
        (dropped, marks)
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn buffered_bytes(&self) -> usize {
        self.queue
            .iter()
            .map(|item| match item {
                Queued::Audio { bytes, played } => bytes.len() - played,
                Queued::Mark(_) => 0,
            })
            .sum()
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The report plus the agent audio heard.
struct Finished {
    report: CallReport,
    recorded: Vec<i16>,
}

/// A connected media stream and everything observed on it.
struct MediaSession<'p> {
    socket: Socket,
    writer: StreamWriter,
    playback: Playback,
    heard: Vec<u8>,
    opened: Instant,
    progress: &'p Progress,
    report: CallReport,
    caller_frames: Vec<Vec<u8>>,
    speech_ended: Option<Instant>,
    input_done: Option<Instant>,
    last_agent_activity: Option<Instant>,
    last_agent_media: Option<Instant>,
    server_closed: bool,
}

impl<'p> MediaSession<'p> {
    async fn open(
        options: &CallOptions,
        call: InboundCall,
        target: &StreamTarget,
        webhook_ms: u64,
        progress: &'p Progress,
    ) -> Result<Self, CallError> {
        let url = options
            .media_url
            .clone()
            .unwrap_or_else(|| target.url.clone());
        progress.set_message(format!("opening media stream {url}"));
        let socket = connect(&url).await?;
        let writer = StreamWriter::new(twilio_sid("MZ"), call.call_sid.clone(), call.account_sid);
        let caller_frames = audio::mulaw_frames(&options.caller_audio);
        let report = CallReport {
            outcome: "connected",
            call_sid: call.call_sid,
            stream_sid: writer.stream_sid.clone(),
            stream_url: url,
            stream_parameters: target.parameters.iter().map(|(k, _)| k.clone()).collect(),
            tenant: parameter(&target.parameters, "tenant"),
            gateway_call_id: parameter(&target.parameters, "callId"),
            ended_by: EndedBy::Caller,
            webhook_ms,
            caller_audio_ms: options.caller_audio.len() as u64 * 1000 / u64::from(audio::RATE_HZ),
            frames_sent: 0,
            agent_messages: 0,
            agent_audio_ms: 0,
            first_agent_audio_ms: None,
            response_latency_ms: None,
            agent_turns: 0,
            total_ms: 0,
            marks: Vec::new(),
            clears: 0,
            dropped_audio_ms: 0,
            transcript: Vec::new(),
            timeline: Vec::new(),
            warnings: Vec::new(),
            out: None,
            status_callback_accepted: None,
        };
        let mut session = Self {
            socket,
            writer,
            playback: Playback::default(),
            heard: Vec::new(),
            opened: Instant::now(),
            progress,
            report,
            caller_frames,
            speech_ended: None,
            input_done: None,
            last_agent_activity: None,
            last_agent_media: None,
            server_closed: false,
        };
        let connected = session.writer.connected();
        session.send(connected).await?;
        let start = session.writer.start(&target.parameters);
        session.send(start).await?;
        session.event("stream started (connected, start sent)".to_owned());
        Ok(session)
    }

    fn now_ms(&self) -> u64 {
        millis(self.opened.elapsed())
    }

    fn event(&mut self, what: String) {
        let at_ms = self.now_ms();
        self.progress
            .note(&format!("{:>8}  {what}", seconds(at_ms)));
        self.report.timeline.push(TimelineEvent { at_ms, what });
    }

    fn warn(&mut self, warning: String) {
        if !self.report.warnings.contains(&warning) {
            self.event(format!("warning: {warning}"));
            self.report.warnings.push(warning);
        }
    }

    async fn send(&mut self, text: String) -> Result<(), CallError> {
        self.socket
            .send(Message::text(text))
            .await
            .map_err(|e| CallError::Stream(Box::new(e)))
    }

    /// The real-time loop: one caller frame and one played agent frame every 20 ms.
    async fn converse(&mut self, options: &CallOptions) -> Result<(), CallError> {
        let speech_frames = self.caller_frames.len();
        let total_frames =
            speech_frames + audio::frames_for_seconds(options.trailing_silence_seconds);
        let idle = Duration::from_secs_f64(options.idle_seconds.max(0.0));
        let max = Duration::from_secs_f64(options.max_seconds.max(1.0));
        self.progress
            .start_bar(total_frames as u64, "sending caller audio");
        let mut ticker = tokio::time::interval(Duration::from_millis(FRAME_MS));
        // Catch up after a stall, as a carrier's jitter buffer would: the average pace stays 50/s.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        // Ctrl-C hangs up like a caller would (stop, recording saved) instead of vanishing.
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        loop {
            tokio::select! {
                _ = &mut interrupted => {
                    self.report.ended_by = EndedBy::Caller;
                    self.event("interrupted: hanging up (stop)".to_owned());
                    break;
                }
                _ = ticker.tick() => {
                    self.tick(speech_frames, total_frames).await?;
                    if self.caller_is_done(idle) {
                        self.report.ended_by = EndedBy::Caller;
                        self.event("agent quiet: hanging up (stop)".to_owned());
                        break;
                    }
                    if self.opened.elapsed() >= max {
                        self.report.ended_by = EndedBy::Timeout;
                        self.event(format!("time limit of {} reached: hanging up", seconds(millis(max))));
                        break;
                    }
                }
                message = self.socket.next() => {
                    if !self.receive(message).await? {
                        self.report.ended_by = EndedBy::Agent;
                        self.server_closed = true;
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    async fn tick(&mut self, speech_frames: usize, total_frames: usize) -> Result<(), CallError> {
        let index = self.report.frames_sent as usize;
        let frame = self
            .caller_frames
            .get(index)
            .cloned()
            .unwrap_or_else(audio::silence_frame);
        let message = self.writer.media(&frame, index as u64 * FRAME_MS);
        self.send(message).await?;
        self.report.frames_sent += 1;
        let sent = index + 1;
        if sent <= total_frames {
            self.progress.set_position(sent as u64);
        }
        if sent == speech_frames {
            self.speech_ended = Some(Instant::now());
            self.event(format!(
                "your audio ended ({})",
                seconds(self.report.caller_audio_ms)
            ));
        }
        if sent == total_frames {
            self.input_done = Some(Instant::now());
            self.progress.start_spinner("waiting for the agent");
            self.event("caller audio and appended silence sent; line stays open".to_owned());
        }
        let before = self.heard.len();
        let marks = self.playback.play_frame(&mut self.heard);
        let speaking = self.heard.len() > before;
        if speaking {
            self.report.agent_audio_ms = self.heard.len() as u64 * 1000 / u64::from(audio::RATE_HZ);
        }
        if self.input_done.is_some() {
            let state = if speaking {
                "agent speaking"
            } else {
                "waiting for the agent"
            };
            self.progress.set_message(format!(
                "{state} ({} of agent audio heard)",
                seconds(self.report.agent_audio_ms)
            ));
        }
        for name in marks {
            self.echo_mark(name).await?;
        }
        Ok(())
    }

    fn caller_is_done(&self, idle: Duration) -> bool {
        let Some(done) = self.input_done else {
            return false;
        };
        let quiet_since = self.last_agent_activity.map_or(done, |t| t.max(done));
        self.playback.is_empty() && quiet_since.elapsed() >= idle
    }

    async fn echo_mark(&mut self, name: String) -> Result<(), CallError> {
        let message = self.writer.mark(&name);
        self.send(message).await?;
        self.event(format!("mark \"{name}\" played (echoed)"));
        self.report.marks.push(name);
        Ok(())
    }

    /// Handles one server message; `false` when the server ended the stream.
    async fn receive(
        &mut self,
        message: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<bool, CallError> {
        let message = match message {
            None => {
                self.event("the server closed the stream".to_owned());
                return Ok(false);
            }
            Some(Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(_),
            )) => {
                self.event("the server dropped the stream".to_owned());
                return Ok(false);
            }
            Some(Err(error)) => return Err(CallError::Stream(Box::new(error))),
            Some(Ok(message)) => message,
        };
        match message {
            Message::Text(text) => self.handle_text(text.as_str()).await?,
            Message::Binary(_) => {
                self.warn(
                    "binary frame received; Twilio accepts text frames only (warning 31950)"
                        .to_owned(),
                );
            }
            Message::Close(frame) => {
                let reason = frame
                    .map(|f| format!(" (code {}, \"{}\")", u16::from(f.code), f.reason))
                    .unwrap_or_default();
                self.event(format!("the server hung up{reason}"));
                return Ok(false);
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        Ok(true)
    }

    async fn handle_text(&mut self, text: &str) -> Result<(), CallError> {
        let message = match parse_server(text) {
            Ok(message) => message,
            Err(error) => {
                self.warn(format!("unreadable message from the server: {error}"));
                return Ok(());
            }
        };
        match message {
            ServerMessage::Media {
                payload,
                stream_sid,
            } => {
                let now = Instant::now();
                self.last_agent_activity = Some(now);
                let new_turn = self
                    .last_agent_media
                    .is_none_or(|last| now.duration_since(last) >= TURN_GAP);
                self.last_agent_media = Some(now);
                if new_turn {
                    self.agent_turn_started(now);
                }
                if stream_sid.as_deref() != Some(self.writer.stream_sid.as_str()) {
                    self.warn(format!(
                        "media with streamSid {stream_sid:?}, expected {} (Twilio error 31951)",
                        self.writer.stream_sid
                    ));
                }
                self.report.agent_messages += 1;
                self.playback.push_audio(payload);
            }
            ServerMessage::Mark { name } => {
                self.last_agent_activity = Some(Instant::now());
                for reached in self.playback.push_mark(name) {
                    self.echo_mark(reached).await?;
                }
            }
            ServerMessage::Clear => {
                self.last_agent_activity = Some(Instant::now());
                let (dropped, marks) = self.playback.clear();
                let dropped_ms = dropped as u64 * 1000 / u64::from(audio::RATE_HZ);
                self.report.clears += 1;
                self.report.dropped_audio_ms += dropped_ms;
                self.event(format!(
                    "clear: dropped {} of buffered agent audio",
                    seconds(dropped_ms)
                ));
                for name in marks {
                    self.echo_mark(name).await?;
                }
            }
            ServerMessage::Text { role, text } => {
                let who = role.clone().unwrap_or_else(|| "server".to_owned());
                self.event(format!("{who}: {text}"));
                let at_ms = self.now_ms();
                self.report
                    .transcript
                    .push(TranscriptLine { at_ms, role, text });
            }
            ServerMessage::Other(event) => {
                self.warn(format!("unknown event \"{event}\" ignored"));
            }
        }
        Ok(())
    }

    fn agent_turn_started(&mut self, now: Instant) {
        let at = self.now_ms();
        self.report.agent_turns += 1;
        self.report.first_agent_audio_ms.get_or_insert(at);
        let mut detail = String::new();
        if let Some(ended) = self.speech_ended
            && self.report.response_latency_ms.is_none()
        {
            let latency = millis(now.duration_since(ended));
            self.report.response_latency_ms = Some(latency);
            detail = format!(", {} after your audio ended", seconds(latency));
        }
        let turn = self.report.agent_turns;
        self.event(format!("agent speaks (turn {turn}{detail})"));
    }

    /// Hangs up (when we ended the call) and closes the socket.
    async fn finish(mut self) -> Finished {
        self.report.total_ms = self.now_ms();
        let unplayed = self.playback.buffered_bytes();
        if unplayed > 0 {
            let ms = unplayed as u64 * 1000 / u64::from(audio::RATE_HZ);
            self.report.dropped_audio_ms += ms;
            self.warn(format!(
                "{} of agent audio was still buffered at hang-up",
                seconds(ms)
            ));
        }
        if !self.server_closed {
            let stop = self.writer.stop();
            // The call is over either way; a failed goodbye changes nothing for the report.
            let _ = self.socket.send(Message::text(stop)).await;
            let _ = self.socket.close(None).await;
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Some(Ok(_)) = self.socket.next().await {}
            })
            .await;
        }
        let mut recorded = Vec::with_capacity(self.heard.len());
        audio::decode_mulaw(&self.heard, &mut recorded);
        Finished {
            report: self.report,
            recorded,
        }
    }
}

/// Opens a `ws://` or `wss://` URL; TLS through rustls with the `ring` provider and the
/// webpki roots, chosen explicitly because the workspace may also compile aws-lc-rs.
async fn connect(url: &str) -> Result<Socket, CallError> {
    let failed = |source| CallError::Connect {
        url: url.to_owned(),
        source: Box::new(source),
    };
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(url, None, true, Some(tls_connector()));
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(error)) => Err(failed(error)),
        Err(_) => Err(failed(tungstenite::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "WebSocket handshake timed out",
        )))),
    }
}

fn tls_connector() -> tokio_tungstenite::Connector {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
            builder.with_root_certificates(roots).with_no_client_auth(),
        )),
        // ring supports the default versions, so this is unreachable in practice; plain
        // connections still work and `wss://` fails with a clear TLS error.
        Err(_) => tokio_tungstenite::Connector::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_reached_after_the_audio_before_them() {
        let mut playback = Playback::default();
        assert_eq!(playback.push_mark("empty".into()), vec!["empty".to_owned()]);
        playback.push_audio(vec![1; 200]);
        assert!(playback.push_mark("m1".into()).is_empty());
        playback.push_audio(vec![2; 100]);
        let mut heard = Vec::new();
        assert!(playback.play_frame(&mut heard).is_empty());
        assert_eq!(heard.len(), 160);
        // The next frame finishes the first chunk (40 bytes), passes m1, then plays 100 more.
        assert_eq!(playback.play_frame(&mut heard), vec!["m1".to_owned()]);
        assert_eq!(heard.len(), 300);
        assert!(playback.is_empty());
    }

    #[test]
    fn clear_drops_audio_and_returns_pending_marks() {
        let mut playback = Playback::default();
        playback.push_audio(vec![1; 320]);
        playback.push_mark("a".into());
        playback.push_audio(vec![1; 160]);
        let mut heard = Vec::new();
        playback.play_frame(&mut heard);
        assert_eq!(playback.buffered_bytes(), 320);
        assert_eq!(playback.clear(), (320, vec!["a".to_owned()]));
        assert!(playback.is_empty());
    }
}
