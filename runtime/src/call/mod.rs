//! One call: the media WebSocket loop, the conversation, barge-in and the agent's replies.
//!
//! A single task owns the socket and all call state; replies run as separate tasks that report
//! back over a channel. Nothing on the audio path awaits a provider: inbound frames are decoded,
//! classified and forwarded in microseconds by the [`listener`], and outbound audio is paced
//! from a queue by the [`speaker`]. This module holds what is left: the conversation (history,
//! replies, tools, DTMF, usage, hang-ups) and the socket.

pub(crate) mod listener;
mod speaker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use serde_json::json;
use switchboard_crds::events::{EndReason, EventKind, Role};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::codec::G711;
use crate::config::{AgentSnapshot, ConfigStore, RuntimeConfig};
use crate::events::{CallRef, EventSink};
use crate::metrics::Metrics;
use crate::pacer::{LEAD_FRAMES, Paced};
use crate::protocol::{
    Carrier, FrameError, Inbound, Outbound, StreamStart, encode_outbound, parse_inbound,
};
use crate::providers::stt::StreamingOptions;
use crate::providers::{ChatMessage, ProviderError, Providers, SttEvent, SttSession};
use crate::recording::Recorder;
use crate::reply::{self, Finished, ReplyEvent, ReplyInput, ReplyJob};
use crate::turn::{Cue, TurnTaking};
use listener::{Heard, Listener};
use speaker::{Speaker, TurnStart};
/// DTMF digits are sent to the agent this long after the last key (or at `#`).
const DTMF_IDLE: Duration = Duration::from_millis(1500);
/// Provider failures in a row before the agent apologises and hangs up.
const MAX_CONSECUTIVE_FAILURES: u32 = 3;
/// Extra time after the goodbye at maximum call length before the call is cut regardless.
const MAX_DURATION_GRACE: Duration = Duration::from_secs(20);

/// What every call shares with the server.
#[derive(Clone, Debug)]
pub struct CallContext {
    /// Process settings.
    pub config: Arc<RuntimeConfig>,
    /// Metrics.
    pub metrics: Metrics,
    /// Event delivery.
    pub events: EventSink,
    /// Shared HTTP client for providers.
    pub http: reqwest::Client,
    /// Cancelled when live calls must end (drain deadline passed).
    pub hard_stop: CancellationToken,
}

/// Serves one carrier media WebSocket until the call ends.
pub async fn run_call(
    mut socket: WebSocket,
    carrier: Carrier,
    store: Arc<ConfigStore>,
    ctx: CallContext,
) {
    let start = tokio::time::timeout(
        ctx.config.start_timeout,
        wait_for_start(&mut socket, &ctx.metrics),
    )
    .await;
    let Ok(Some(start)) = start else {
        tracing::info!(
            carrier = carrier.as_str(),
            "media stream ended before a usable start"
        );
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    // One snapshot per call, taken at start: a reload never changes a live call's agent.
    let tenant = store.snapshot_for(start.params.tenant.as_deref());
    let (agent_name, snapshot) = tenant.for_call(
        start.params.from.as_deref(),
        start.params.to.as_deref(),
        start.params.campaign.as_deref(),
        start.params.agent.as_deref(),
    );
    tracing::debug!(agent = %agent_name, "agent picked for the call");
    let mut call = Call::new(carrier, start, Arc::new(snapshot), ctx).await;
    let reason = call.run(&mut socket).await;
    call.end(reason);
    let _ = socket.send(Message::Close(None)).await;
    // Uploaded inside the call's task, so a draining runtime waits for it.
    call.upload_recording().await;
}

async fn wait_for_start(socket: &mut WebSocket, metrics: &Metrics) -> Option<StreamStart> {
    while let Some(Ok(message)) = socket.recv().await {
        let Message::Text(text) = message else {
            if matches!(message, Message::Close(_)) {
                return None;
            }
            continue;
        };
        match parse_inbound(&text) {
            Ok(Inbound::Start(start)) => return Some(*start),
            Ok(Inbound::Stop) => return None,
            Ok(_) => {}
            Err(FrameError::UnsupportedFormat(format)) => {
                tracing::warn!(%format, "unsupported media format");
                return None;
            }
            Err(error) => {
                metrics.bad_frames.inc();
                tracing::debug!(%error, "bad frame before start");
            }
        }
    }
    None
}

struct ActiveReply {
    turn: u32,
    cancel: CancellationToken,
    /// End the call once this reply has been heard.
    hangup_after: Option<EndReason>,
}

#[derive(Default)]
struct Usage {
    stt_seconds: f64,
    tts_characters: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
}

struct Call {
    ctx: CallContext,
    carrier: Carrier,
    stream_id: String,
    codec: G711,
    call: CallRef,
    snapshot: Arc<AgentSnapshot>,
    providers: Arc<Providers>,
    started_at: Instant,
    last_media: Instant,
    listener: Listener,
    /// Words and end-of-speech events of a streaming STT.
    stt_events: Option<mpsc::Receiver<SttEvent>>,
    heard: Vec<Heard>,
    speaker: Speaker,
    paced: Vec<Paced>,
    // Conversation.
    history: Vec<ChatMessage>,
    tools: Arc<Vec<serde_json::Value>>,
    reply: Option<ActiveReply>,
    replies_tx: mpsc::UnboundedSender<ReplyEvent>,
    replies_rx: mpsc::UnboundedReceiver<ReplyEvent>,
    next_turn: u32,
    transcript_index: u32,
    caller_turn_end: Option<Instant>,
    usage: Usage,
    failures: u32,
    dtmf: String,
    dtmf_at: Option<Instant>,
    hangup_at: Option<(Instant, EndReason)>,
    goodbye_started: bool,
    survey_fields: Vec<String>,
    /// Both legs, when the agent records (`AgentSpec.recording`).
    recorder: Option<Recorder>,
    /// Decoded audio of the frame being recorded (reused).
    record_buffer: Vec<i16>,
}

impl Call {
    async fn new(
        carrier: Carrier,
        start: StreamStart,
        snapshot: Arc<AgentSnapshot>,
        ctx: CallContext,
    ) -> Self {
        let providers = Arc::new(Providers::from_snapshot(&snapshot, &ctx.http));
        let call = CallRef {
            tenant: start
                .params
                .tenant
                .clone()
                .unwrap_or_else(|| ctx.config.tenant.clone()),
            call_id: start
                .params
                .call_id
                .clone()
                .unwrap_or_else(|| start.stream_id.clone()),
        };
        ctx.events.emit(
            &call,
            EventKind::CallStarted {
                carrier: carrier.as_str().into(),
                stream_id: start.stream_id.clone(),
                carrier_call_id: start.carrier_call_id.clone(),
                from: start.params.from.clone(),
                to: start.params.to.clone(),
                campaign: start.params.campaign.clone(),
                contact: start.params.contact.clone(),
            },
        );
        let campaign = start
            .params
            .campaign
            .as_ref()
            .and_then(|name| snapshot.campaigns.get(name));
        let (system_prompt, mut greeting, tools, survey_fields) = agent_setup(&snapshot, campaign);
        let recorder = snapshot
            .agent
            .recording
            .as_ref()
            .filter(|r| r.enabled)
            .map(|r| {
                // The caller hears the notice before anything else is said.
                greeting = format!("{} {greeting}", r.consent.trim()).trim().to_owned();
                let longest = Duration::from_secs(snapshot.agent.max_call_seconds.max(1) as u64)
                    + MAX_DURATION_GRACE;
                Recorder::new(r.channels, longest.as_secs())
            });
        let taking = TurnTaking::of(&snapshot.agent);
        let (stt, stt_events) = open_stt(&providers, &taking, &ctx).await;
        let (replies_tx, replies_rx) = mpsc::unbounded_channel();
        let mut this = Self {
            carrier,
            stream_id: start.stream_id,
            codec: start.codec,
            call,
            providers,
            started_at: Instant::now(),
            last_media: Instant::now(),
            listener: Listener::new(&taking, stt),
            stt_events,
            heard: Vec::new(),
            speaker: Speaker::new(start.codec),
            paced: Vec::new(),
            history: vec![ChatMessage::new("system", system_prompt)],
            tools: Arc::new(tools),
            reply: None,
            replies_tx,
            replies_rx,
            next_turn: 0,
            transcript_index: 0,
            caller_turn_end: None,
            usage: Usage::default(),
            failures: 0,
            dtmf: String::new(),
            dtmf_at: None,
            hangup_at: None,
            goodbye_started: false,
            survey_fields,
            recorder,
            record_buffer: Vec::new(),
            snapshot,
            ctx,
        };
        this.ctx.metrics.active_calls.inc();
        if !greeting.is_empty() {
            this.start_reply(ReplyInput::Say(greeting), None);
        }
        this
    }

    async fn run(&mut self, socket: &mut WebSocket) -> EndReason {
        let mut pace = tokio::time::interval(crate::pacer::FRAME_DURATION);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut housekeeping = tokio::time::interval(Duration::from_millis(200));
        let hard_stop = self.ctx.hard_stop.clone();
        loop {
            let outcome = tokio::select! {
                message = socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => {
                        let started = Instant::now();
                        let outcome = self.on_carrier_text(&text, socket).await;
                        self.ctx.metrics.frame_handling.observe(started.elapsed().as_secs_f64());
                        outcome
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => Err(EndReason::CallerHangup),
                    Some(Ok(_)) => Ok(()),
                },
                Some(event) = self.replies_rx.recv() => self.on_reply_event(event, socket).await,
                event = next_event(&mut self.stt_events) => match event {
                    Some(event) => self.on_stt_event(event, socket).await,
                    // The stream ended; turns go on by the VAD alone.
                    None => {
                        self.stt_events = None;
                        Ok(())
                    }
                },
                _ = pace.tick(), if self.speaker.is_sending() => self.send_due(socket).await,
                _ = housekeeping.tick() => self.housekeeping(socket).await,
                () = hard_stop.cancelled() => Err(EndReason::Shutdown),
            };
            if let Err(reason) = outcome {
                return reason;
            }
        }
    }

    fn end(&mut self, reason: EndReason) {
        if let Some(reply) = self.reply.take() {
            reply.cancel.cancel();
        }
        self.finish_speech(true);
        self.usage.stt_seconds += self.listener.streamed_seconds();
        let (llm, stt, tts) = (
            self.providers.llm.name(),
            self.listener.stt().name(),
            self.providers.tts.name(),
        );
        self.ctx.events.emit(
            &self.call,
            EventKind::Usage {
                stt_seconds: (self.usage.stt_seconds * 1000.0).round() / 1000.0,
                tts_characters: self.usage.tts_characters,
                llm_prompt_tokens: self.usage.prompt_tokens,
                llm_completion_tokens: self.usage.completion_tokens,
                stt_provider: stt.into(),
                llm_provider: llm.into(),
                tts_provider: tts.into(),
            },
        );
        self.ctx.events.emit(
            &self.call,
            EventKind::CallEnded {
                reason,
                duration_ms: self.started_at.elapsed().as_millis() as u64,
                turns: self.transcript_index,
            },
        );
        self.ctx.metrics.active_calls.dec();
        self.ctx
            .metrics
            .calls_total
            .with_label_values(&[end_reason_label(reason)])
            .inc();
        tracing::info!(call_id = %self.call.call_id, ?reason, "call ended");
    }

    /// Sends the call's recording, if it was recorded, to the gateway (see
    /// [`crate::recording`]). Nothing is stored anywhere else: a recording the gateway
    /// does not take is logged and dropped with the call's memory.
    async fn upload_recording(&mut self) {
        let Some(recorder) = self.recorder.take() else {
            return;
        };
        let Some(url) = self.ctx.config.events_url.as_deref().and_then(|events| {
            switchboard_crds::recording::upload_url(events, &self.call.tenant, &self.call.call_id)
        }) else {
            tracing::warn!(call_id = %self.call.call_id, "recording not sent: no gateway URL for it");
            return;
        };
        let wav = match recorder.wav() {
            Ok(wav) => wav,
            Err(error) => {
                tracing::error!(%error, call_id = %self.call.call_id, "cannot write the recording");
                return;
            }
        };
        let bytes = wav.len();
        let stored = crate::recording::upload(
            &url,
            self.ctx.config.internal_token.as_ref(),
            wav,
            &self.ctx.hard_stop,
        )
        .await;
        let outcome = if stored { "stored" } else { "lost" };
        self.ctx
            .metrics
            .recordings
            .with_label_values(&[outcome])
            .inc();
        tracing::info!(call_id = %self.call.call_id, bytes, outcome, "call recording");
    }

    // ---- inbound -------------------------------------------------------------------------

    async fn on_carrier_text(
        &mut self,
        text: &str,
        socket: &mut WebSocket,
    ) -> Result<(), EndReason> {
        match parse_inbound(text) {
            Ok(Inbound::Media { payload, .. }) => self.on_media(&payload, socket).await,
            Ok(Inbound::Mark { name }) => {
                self.speaker.on_mark(&name);
                Ok(())
            }
            Ok(Inbound::Dtmf { digit }) => self.on_dtmf(digit, socket).await,
            Ok(Inbound::Stop) => Err(EndReason::CallerHangup),
            Ok(Inbound::CarrierError { message }) => {
                tracing::warn!(call_id = %self.call.call_id, %message, "carrier reported a stream error");
                Ok(())
            }
            Ok(Inbound::Connected | Inbound::Start(_) | Inbound::Ignored) => Ok(()),
            Err(error) => {
                // One bad frame never ends a call; a dead stream ends by media timeout.
                self.ctx.metrics.bad_frames.inc();
                tracing::debug!(%error, "bad carrier frame");
                Ok(())
            }
        }
    }

    async fn on_media(&mut self, payload: &[u8], socket: &mut WebSocket) -> Result<(), EndReason> {
        self.last_media = Instant::now();
        if let Some(recorder) = &mut self.recorder {
            self.record_buffer.clear();
            self.codec.decode_into(payload, &mut self.record_buffer);
            recorder.caller(&self.record_buffer);
        }
        let frames = self.listener.on_media(self.codec, payload, &mut self.heard);
        self.ctx.metrics.frames_in.inc_by(frames);
        self.act_on_heard(socket).await
    }

    async fn on_stt_event(
        &mut self,
        event: SttEvent,
        socket: &mut WebSocket,
    ) -> Result<(), EndReason> {
        self.listener.on_stt_event(event, &mut self.heard);
        self.act_on_heard(socket).await
    }

    /// Acts on what the listener heard, in order.
    async fn act_on_heard(&mut self, socket: &mut WebSocket) -> Result<(), EndReason> {
        let mut heard = std::mem::take(&mut self.heard);
        let mut outcome = Ok(());
        for event in heard.drain(..) {
            outcome = self.on_heard(event, socket).await;
            if outcome.is_err() {
                break;
            }
        }
        self.heard = heard;
        outcome
    }

    async fn on_heard(&mut self, event: Heard, socket: &mut WebSocket) -> Result<(), EndReason> {
        match event {
            Heard::SpeechStarted if self.agent_busy() => self.barge_in(socket).await,
            Heard::SpeechStarted => Ok(()),
            Heard::TurnEnded(audio) => {
                self.caller_turn_end = Some(Instant::now());
                if !self.goodbye_started {
                    self.start_reply(ReplyInput::Utterance(audio), None);
                }
                Ok(())
            }
        }
    }

    async fn on_dtmf(&mut self, digit: char, socket: &mut WebSocket) -> Result<(), EndReason> {
        if self.agent_busy() {
            self.barge_in(socket).await?;
        }
        if self.dtmf.len() < 32 {
            self.dtmf.push(digit);
        }
        self.dtmf_at = Some(Instant::now());
        if digit == '#' {
            self.flush_dtmf();
        }
        Ok(())
    }

    fn flush_dtmf(&mut self) {
        let digits = std::mem::take(&mut self.dtmf);
        self.dtmf_at = None;
        if !digits.is_empty() && !self.goodbye_started {
            self.caller_turn_end = Some(Instant::now());
            self.start_reply(
                ReplyInput::Text(format!("[The caller pressed the keys: {digits}]")),
                None,
            );
        }
    }

    // ---- replies -------------------------------------------------------------------------

    fn agent_busy(&self) -> bool {
        self.reply.is_some() || self.speaker.has_turn() || self.speaker.is_sending()
    }

    fn start_reply(&mut self, input: ReplyInput, hangup_after: Option<EndReason>) {
        if let Some(previous) = self.reply.take() {
            previous.cancel.cancel();
        }
        let turn = self.next_turn;
        self.next_turn += 1;
        let cancel = CancellationToken::new();
        let job = ReplyJob {
            turn,
            input,
            history: self.history.clone(),
            tools: self.tools.clone(),
            providers: self.providers.clone(),
            stt: self.listener.stt().clone(),
            timeout: self.ctx.config.provider_timeout,
            fallback_text: self.ctx.config.fallback_text.clone(),
            events: self.replies_tx.clone(),
        };
        let token = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = token.cancelled() => {}
                () = reply::run(job) => {}
            }
        });
        self.reply = Some(ActiveReply {
            turn,
            cancel,
            hangup_after,
        });
    }

    fn current_turn(&self) -> Option<u32> {
        self.reply.as_ref().map(|r| r.turn)
    }

    async fn on_reply_event(
        &mut self,
        event: ReplyEvent,
        socket: &mut WebSocket,
    ) -> Result<(), EndReason> {
        match event {
            ReplyEvent::CallerText {
                turn,
                text,
                stt_latency,
                stt_seconds,
            } if Some(turn) == self.current_turn() => {
                self.usage.stt_seconds += stt_seconds;
                if let Some(latency) = stt_latency {
                    self.observe_stage("stt", latency);
                }
                if !text.trim().is_empty() {
                    let offset = self.offset_ms();
                    self.emit_turn(Role::Caller, text.clone(), None, false, offset);
                    self.history.push(ChatMessage::new("user", text));
                }
            }
            ReplyEvent::Audio { turn, segment, pcm } if Some(turn) == self.current_turn() => {
                let start = self.turn_start();
                self.speaker.push_audio(turn, segment, &pcm, start);
            }
            ReplyEvent::SegmentEnd {
                turn,
                segment,
                text,
            } if Some(turn) == self.current_turn() => {
                let start = self.turn_start();
                self.speaker.end_segment(turn, segment, text, start);
            }
            ReplyEvent::ProviderFailed {
                stage,
                provider,
                message,
            } => {
                self.ctx
                    .metrics
                    .provider_errors
                    .with_label_values(&[stage, provider])
                    .inc();
                self.ctx.events.emit(
                    &self.call,
                    EventKind::ProviderError {
                        stage: stage.into(),
                        provider: provider.into(),
                        message,
                    },
                );
            }
            ReplyEvent::Finished(finished) if Some(finished.turn) == self.current_turn() => {
                return self.on_reply_finished(finished, socket).await;
            }
            // Events of a reply cancelled by barge-in.
            _ => {}
        }
        Ok(())
    }

    /// How the agent turn now starting is described, should this event start one.
    fn turn_start(&self) -> TurnStart {
        TurnStart {
            offset_ms: self.offset_ms(),
            caller_turn_end: self.caller_turn_end,
            hangup_after: self.reply.as_ref().and_then(|r| r.hangup_after),
        }
    }

    async fn on_reply_finished(
        &mut self,
        finished: Box<Finished>,
        socket: &mut WebSocket,
    ) -> Result<(), EndReason> {
        let start = self.turn_start();
        let reply = self.reply.take();
        self.usage.tts_characters += finished.tts_characters;
        self.usage.prompt_tokens += finished.llm.prompt_tokens;
        self.usage.completion_tokens += finished.llm.completion_tokens;
        if let Some(latency) = finished.llm.first_token {
            self.observe_stage("llm_first_token", latency);
        }
        if let Some(latency) = finished.tts_first_audio {
            self.observe_stage("tts_first_audio", latency);
        }
        self.failures = if finished.failed {
            self.failures + 1
        } else {
            0
        };
        let mut hangup_after = reply.and_then(|r| r.hangup_after);
        for tool in &finished.llm.tool_calls {
            hangup_after = hangup_after.or(self.on_tool_call(&tool.name, &tool.arguments));
        }
        if self.failures >= MAX_CONSECUTIVE_FAILURES && hangup_after.is_none() {
            hangup_after = Some(EndReason::ProviderFailure);
        }
        let said_nothing = finished.text.is_empty();
        let turn = finished.turn;
        if said_nothing && !self.speaker.has_turn() {
            // Nothing to play (noise, or a tool call without words).
            if let Some(reason) = hangup_after {
                self.say_goodbye(reason);
            }
            return Ok(());
        }
        self.speaker
            .reply_finished(turn, finished, hangup_after, start);
        self.maybe_finish_speech(socket).await
    }

    /// Acts on a tool call; returns how the call should end after the current speech, if so.
    fn on_tool_call(&mut self, name: &str, arguments: &str) -> Option<EndReason> {
        match name {
            "end_call" => Some(EndReason::AgentHangup),
            "transfer_call" => {
                let to = self.snapshot.agent.transfer_number.clone()?;
                self.ctx
                    .events
                    .emit(&self.call, EventKind::TransferRequested { to });
                Some(EndReason::Transferred)
            }
            "record_answer" => {
                let args: serde_json::Value = serde_json::from_str(arguments).unwrap_or_default();
                let field = args["field"].as_str().unwrap_or_default().to_owned();
                if self.survey_fields.contains(&field) {
                    self.ctx.events.emit(
                        &self.call,
                        EventKind::SurveyAnswer {
                            field,
                            raw: args["raw"].as_str().unwrap_or_default().to_owned(),
                            value: args
                                .get("value")
                                .cloned()
                                .unwrap_or(serde_json::Value::Null),
                        },
                    );
                }
                None
            }
            _ => None,
        }
    }

    fn say_goodbye(&mut self, reason: EndReason) {
        if self.goodbye_started {
            return;
        }
        self.goodbye_started = true;
        let goodbye = self.ctx.config.goodbye_text.clone();
        self.start_reply(ReplyInput::Say(goodbye), Some(reason));
    }

    /// Caller spoke over the agent: stop the audio, cancel the reply, record what was heard.
    async fn barge_in(&mut self, socket: &mut WebSocket) -> Result<(), EndReason> {
        self.ctx.metrics.barge_ins.inc();
        let hangup = self.reply.as_ref().and_then(|r| r.hangup_after);
        if let Some(reply) = self.reply.take() {
            reply.cancel.cancel();
        }
        self.speaker.clear();
        self.send(socket, Outbound::Clear).await?;
        let hangup = hangup.or(self.speaker.hangup_after());
        self.finish_speech(true);
        if let Some(reason) = hangup {
            self.hangup_at = Some((Instant::now(), reason));
        }
        Ok(())
    }

    /// Completes the agent turn once the reply is finished and all its audio is out.
    async fn maybe_finish_speech(&mut self, _socket: &mut WebSocket) -> Result<(), EndReason> {
        if self.speaker.turn_complete() {
            let hangup = self.finish_speech(false);
            if let Some(reason) = hangup {
                // Let the last frames (sent ahead of real time) play out before hanging up.
                let tail = crate::pacer::FRAME_DURATION * (LEAD_FRAMES as u32 + 10);
                self.hangup_at = Some((Instant::now() + tail, reason));
            }
        }
        Ok(())
    }

    /// Ends the agent's turn, if one is under way: emits its transcript turn and latencies;
    /// returns a pending hang-up.
    fn finish_speech(&mut self, interrupted: bool) -> Option<EndReason> {
        let spoken = self.speaker.finish(interrupted)?;
        let index = self.transcript_index;
        if !spoken.text.is_empty() || !spoken.heard.is_empty() {
            self.emit_turn(
                Role::Agent,
                spoken.text,
                Some(spoken.heard.clone()),
                interrupted,
                spoken.offset_ms,
            );
        }
        if !spoken.heard.is_empty() {
            self.history
                .push(ChatMessage::new("assistant", spoken.heard));
        }
        if let Some(finished) = &spoken.finished {
            self.ctx.events.emit(
                &self.call,
                EventKind::TurnLatency {
                    index,
                    stt_ms: None,
                    llm_first_token_ms: finished.llm.first_token.map(|d| d.as_millis() as u64),
                    tts_first_audio_ms: finished.tts_first_audio.map(|d| d.as_millis() as u64),
                    voice_to_voice_ms: spoken.voice_to_voice.map(|d| d.as_millis() as u64),
                },
            );
        }
        spoken.hangup_after
    }

    // ---- outbound ------------------------------------------------------------------------

    async fn send_due(&mut self, socket: &mut WebSocket) -> Result<(), EndReason> {
        let mut paced = std::mem::take(&mut self.paced);
        if let Some(latency) = self.speaker.due(Instant::now(), &mut paced) {
            self.observe_stage("voice_to_voice", latency);
        }
        let mut outcome = Ok(());
        for item in paced.drain(..) {
            outcome = match item {
                Paced::Frame { bytes, .. } => {
                    self.ctx.metrics.frames_out.inc();
                    if let Some(recorder) = &mut self.recorder {
                        self.record_buffer.clear();
                        self.codec.decode_into(&bytes[..], &mut self.record_buffer);
                        recorder.agent(self.started_at.elapsed(), &self.record_buffer);
                    }
                    self.send(socket, Outbound::Media(&bytes[..])).await
                }
                Paced::Mark(name) => self.send(socket, Outbound::Mark(&name)).await,
            };
            if outcome.is_err() {
                break;
            }
        }
        self.paced = paced;
        outcome?;
        if !self.speaker.is_sending() {
            self.maybe_finish_speech(socket).await?;
        }
        Ok(())
    }

    async fn send(
        &mut self,
        socket: &mut WebSocket,
        message: Outbound<'_>,
    ) -> Result<(), EndReason> {
        let text = encode_outbound(self.carrier, &self.stream_id, message);
        socket
            .send(Message::Text(text.into()))
            .await
            .map_err(|_| EndReason::CallerHangup)
    }

    // ---- timers --------------------------------------------------------------------------

    async fn housekeeping(&mut self, socket: &mut WebSocket) -> Result<(), EndReason> {
        let now = Instant::now();
        if let Some((at, reason)) = self.hangup_at
            && now >= at
        {
            return Err(reason);
        }
        if self
            .dtmf_at
            .is_some_and(|at| now.duration_since(at) >= DTMF_IDLE)
        {
            self.flush_dtmf();
        }
        if now.duration_since(self.last_media) >= self.ctx.config.media_timeout {
            return Err(EndReason::MediaTimeout);
        }
        let max = Duration::from_secs(self.snapshot.agent.max_call_seconds.max(1) as u64);
        let elapsed = now.duration_since(self.started_at);
        if elapsed >= max + MAX_DURATION_GRACE {
            return Err(EndReason::MaxDuration);
        }
        if elapsed >= max && !self.goodbye_started {
            if self.agent_busy() {
                self.barge_in(socket).await?;
            }
            self.say_goodbye(EndReason::MaxDuration);
        }
        Ok(())
    }

    // ---- helpers -------------------------------------------------------------------------

    fn offset_ms(&self) -> u64 {
        self.started_at.elapsed().as_millis() as u64
    }

    fn observe_stage(&self, stage: &str, latency: Duration) {
        self.ctx
            .metrics
            .stage_latency
            .with_label_values(&[stage])
            .observe(latency.as_secs_f64());
    }

    fn emit_turn(
        &mut self,
        role: Role,
        text: String,
        heard_text: Option<String>,
        interrupted: bool,
        offset_ms: u64,
    ) {
        let index = self.transcript_index;
        self.transcript_index += 1;
        self.ctx.events.emit(
            &self.call,
            EventKind::TranscriptTurn {
                index,
                role,
                text,
                heard_text,
                interrupted,
                offset_ms,
            },
        );
    }
}

/// Opens the call's speech-to-text session (with turn events when the end of turn adapts
/// to the transcript); a streaming provider that cannot be reached fails at the first turn
/// (the caller hears the fallback).
async fn open_stt(
    providers: &Providers,
    taking: &TurnTaking,
    ctx: &CallContext,
) -> (Arc<dyn SttSession>, Option<mpsc::Receiver<SttEvent>>) {
    let options = StreamingOptions {
        turn_events: taking.end_of_turn.adaptive,
        endpointing_ms: taking.end_of_turn.wait_ms(Cue::Complete),
    };
    let opened =
        crate::providers::stt::open_session(&providers.stt, options, ctx.config.provider_timeout)
            .await;
    match &opened.error {
        None => {}
        Some(ProviderError::MissingKey(key)) => {
            tracing::warn!(key, "speech-to-text not configured");
        }
        Some(error) => {
            ctx.metrics
                .provider_errors
                .with_label_values(&["stt", opened.session.name()])
                .inc();
            tracing::warn!(%error, "cannot open the speech-to-text stream");
        }
    }
    (opened.session, opened.events)
}

/// The next event of an optional channel (never, without one).
async fn next_event<T>(events: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// System prompt, greeting, tools and survey fields for the call's agent (and campaign).
fn agent_setup(
    snapshot: &AgentSnapshot,
    campaign: Option<&switchboard_crds::campaign::CampaignAgent>,
) -> (String, String, Vec<serde_json::Value>, Vec<String>) {
    let agent = &snapshot.agent;
    let mut prompt = campaign
        .and_then(|c| c.system_prompt.clone())
        .unwrap_or_else(|| agent.system_prompt.clone());
    let greeting = campaign
        .and_then(|c| c.greeting.clone())
        .unwrap_or_else(|| agent.greeting.clone());
    prompt.push_str(&format!(
        "\n\nYou are speaking on a phone call. Reply in the language {}. Use short spoken sentences without markup.",
        agent.language
    ));
    let mut tools = vec![json!({"type": "function", "function": {
        "name": "end_call",
        "description": "Hang up once the conversation is over and you have said goodbye.",
        "parameters": {"type": "object", "properties": {}}
    }})];
    if agent.transfer_number.is_some() {
        tools.push(json!({"type": "function", "function": {
            "name": "transfer_call",
            "description": "Transfer the caller to a human colleague when they ask for one or you cannot help.",
            "parameters": {"type": "object", "properties": {}}
        }}));
    }
    let mut fields = Vec::new();
    if let Some(campaign) = campaign.filter(|c| !c.questions.is_empty()) {
        prompt.push_str("\n\nAsk these survey questions in order, one at a time. After each answer, call record_answer with the field, the caller's words as `raw`, and `value` mapped to the expected type (or null if unclear):");
        for (i, q) in campaign.questions.iter().enumerate() {
            let choices = if q.choices.is_empty() {
                String::new()
            } else {
                format!(" (one of: {})", q.choices.join(", "))
            };
            prompt.push_str(&format!(
                "\n{}. [{}, {:?}] {}{}",
                i + 1,
                q.field,
                q.answer_type,
                q.text,
                choices
            ));
            fields.push(q.field.clone());
        }
        tools.push(json!({"type": "function", "function": {
            "name": "record_answer",
            "description": "Record the caller's answer to a survey question.",
            "parameters": {"type": "object", "properties": {
                "field": {"type": "string", "enum": fields},
                "raw": {"type": "string"},
                "value": {}
            }, "required": ["field", "raw", "value"]}
        }}));
    }
    (prompt, greeting, tools, fields)
}

/// The `reason` label of a call's end (one of [`crate::metrics::END_REASONS`]).
fn end_reason_label(reason: EndReason) -> &'static str {
    match reason {
        EndReason::CallerHangup => "caller_hangup",
        EndReason::AgentHangup => "agent_hangup",
        EndReason::Transferred => "transferred",
        EndReason::MaxDuration => "max_duration",
        EndReason::ProviderFailure => "provider_failure",
        EndReason::MediaTimeout => "media_timeout",
        EndReason::Shutdown => "shutdown",
        EndReason::ProtocolError => "protocol_error",
    }
}
