//! Language models: the builtin echo agent and OpenAI-compatible streaming chat completions
//! (OpenAI, Groq, vLLM, Ollama … by base URL), read as server-sent events.

use std::time::{Duration, Instant};

use serde::Serialize;
use switchboard_crds::tenant::{LlmProvider, LlmSpec};

use super::{ProviderError, check_status, next_chunk};
use crate::config::{ProviderKeys, Secret};

const OPENAI_BASE: &str = "https://api.openai.com/v1";
const GROQ_BASE: &str = "https://api.groq.com/openai/v1";

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message of `role`.
    pub fn new(role: &'static str, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// A function the model may call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    /// Function name (`end_call`, `transfer_call`, `record_answer`).
    pub name: String,
    /// JSON arguments as sent by the model.
    pub arguments: String,
}

/// What a completed reply produced besides its text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LlmOutcome {
    /// Prompt tokens reported by the provider.
    pub prompt_tokens: u64,
    /// Completion tokens reported by the provider.
    pub completion_tokens: u64,
    /// Tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Request → first token.
    pub first_token: Option<Duration>,
}

/// A configured language model.
#[derive(Clone, Debug)]
pub enum Llm {
    /// Offline echo agent: "You said: <transcript>".
    Builtin,
    /// `POST {base}/chat/completions` with `stream: true`.
    OpenAi {
        /// Provider name for events.
        name: &'static str,
        /// Shared client.
        http: reqwest::Client,
        /// Base URL ending in `/v1`.
        base: String,
        /// Bearer key (required for OpenAI and Groq).
        key: Result<Secret, &'static str>,
        /// Model name.
        model: String,
        /// Sampling temperature.
        temperature: Option<f64>,
    },
}

impl Llm {
    /// The provider described by `spec`.
    pub fn from_spec(spec: &LlmSpec, keys: &ProviderKeys, http: &reqwest::Client) -> Self {
        let temperature = spec.temperature.as_deref().and_then(|t| t.parse().ok());
        let (name, base, key_name, model, key_required) = match spec.provider {
            LlmProvider::Builtin => return Llm::Builtin,
            LlmProvider::Openai => ("openai", OPENAI_BASE, "OPENAI_API_KEY", "gpt-4o-mini", true),
            LlmProvider::Groq => (
                "groq",
                GROQ_BASE,
                "GROQ_API_KEY",
                "llama-3.3-70b-versatile",
                true,
            ),
            LlmProvider::OpenaiCompatible => (
                "openai-compatible",
                OPENAI_BASE,
                "openai-compatible credential",
                "default",
                false,
            ),
        };
        let Some(vendor) = spec.provider.vendor() else {
            return Llm::Builtin;
        };
        let auth = super::stage_auth(
            keys,
            vendor,
            spec.credential.as_deref(),
            spec.base_url.as_deref(),
            base,
            key_required,
            key_name,
        );
        Llm::OpenAi {
            name,
            http: http.clone(),
            base: auth.base.trim_end_matches('/').to_owned(),
            key: auth.key,
            model: spec.model.clone().unwrap_or_else(|| model.into()),
            temperature,
        }
    }

    /// Provider name for events and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Llm::Builtin => "builtin",
            Llm::OpenAi { name, .. } => name,
        }
    }

    /// Streams a reply to `messages`, calling `on_text` with each piece of text as it arrives.
    ///
    /// Retried once when the failure happened before any text was produced (nothing was said).
    pub async fn stream_reply(
        &self,
        messages: &[ChatMessage],
        tools: &[serde_json::Value],
        timeout: Duration,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<LlmOutcome, ProviderError> {
        match self {
            Llm::Builtin => {
                let last = messages
                    .iter()
                    .rev()
                    .find(|m| m.role == "user")
                    .map(|m| m.content.as_str())
                    .unwrap_or("");
                on_text(&format!("You said: {last}"));
                Ok(LlmOutcome {
                    first_token: Some(Duration::ZERO),
                    ..LlmOutcome::default()
                })
            }
            Llm::OpenAi {
                http,
                base,
                key,
                model,
                temperature,
                ..
            } => {
                let key = super::require_key(key.as_ref().ok(), "API key of the language model")?;
                let body = ChatRequest {
                    model,
                    messages,
                    stream: true,
                    stream_options: StreamOptions {
                        include_usage: true,
                    },
                    temperature: *temperature,
                    tools: (!tools.is_empty()).then_some(tools),
                };
                let mut produced = false;
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let mut guard = |text: &str| {
                        produced = true;
                        on_text(text);
                    };
                    let result = stream_once(http, base, &key, &body, timeout, &mut guard).await;
                    match result {
                        Err(error) if error.is_retryable() && !produced && attempt < 2 => continue,
                        other => return other,
                    }
                }
            }
        }
    }
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a [serde_json::Value]>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

async fn stream_once(
    http: &reqwest::Client,
    base: &str,
    key: &Secret,
    body: &ChatRequest<'_>,
    timeout: Duration,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<LlmOutcome, ProviderError> {
    let started = Instant::now();
    let mut request = http.post(format!("{base}/chat/completions")).json(body);
    if !key.expose().is_empty() {
        request = request.bearer_auth(key.expose());
    }
    let response = tokio::time::timeout(timeout, request.send())
        .await
        .map_err(|_| ProviderError::Timeout)??;
    let response = check_status(response).await?;
    let mut stream = Box::pin(response.bytes_stream());
    let mut parser = SseParser::default();
    let mut outcome = LlmOutcome::default();
    let mut tools = ToolAccumulator::default();
    while let Some(chunk) = next_chunk(&mut stream, timeout).await? {
        for data in parser.push(&chunk) {
            if data == "[DONE]" {
                outcome.tool_calls = tools.finish();
                return Ok(outcome);
            }
            let Ok(event) = serde_json::from_str::<ChatChunk>(&data) else {
                continue;
            };
            if let Some(usage) = event.usage {
                outcome.prompt_tokens = usage.prompt_tokens;
                outcome.completion_tokens = usage.completion_tokens;
            }
            for choice in event.choices {
                if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                    outcome.first_token.get_or_insert_with(|| started.elapsed());
                    on_text(&text);
                }
                for call in choice.delta.tool_calls {
                    outcome.first_token.get_or_insert_with(|| started.elapsed());
                    tools.push(call);
                }
            }
        }
    }
    // Stream ended without [DONE]: keep what we have (some servers omit it).
    outcome.tool_calls = tools.finish();
    Ok(outcome)
}

/// Incremental server-sent-events parser yielding each event's `data`.
#[derive(Default, Debug)]
pub struct SseParser {
    buffer: String,
}

impl SseParser {
    /// Feeds bytes; returns the data of every complete event.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.push_str(&String::from_utf8_lossy(bytes));
        let mut out = Vec::new();
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(data) = line.strip_prefix("data:") {
                out.push(data.trim_start().to_owned());
            }
        }
        out
    }
}

#[derive(serde::Deserialize)]
struct ChatChunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(serde::Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
}

#[derive(serde::Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(serde::Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: usize,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(serde::Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(serde::Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// Tool calls arrive in pieces keyed by `index`: the name first, arguments in fragments.
#[derive(Default)]
struct ToolAccumulator {
    calls: Vec<ToolCall>,
}

impl ToolAccumulator {
    fn push(&mut self, delta: ToolCallDelta) {
        while self.calls.len() <= delta.index.min(16) {
            self.calls.push(ToolCall {
                name: String::new(),
                arguments: String::new(),
            });
        }
        let Some(call) = self.calls.get_mut(delta.index.min(16)) else {
            return;
        };
        if let Some(function) = delta.function {
            if let Some(name) = function.name {
                call.name.push_str(&name);
            }
            if let Some(arguments) = function.arguments {
                call.arguments.push_str(&arguments);
            }
        }
    }

    fn finish(self) -> Vec<ToolCall> {
        self.calls
            .into_iter()
            .filter(|c| !c.name.is_empty())
            .collect()
    }
}

/// Splits streamed text into sentences so speech can start before the reply is complete.
#[derive(Default, Debug)]
pub struct SentenceSplitter {
    buffer: String,
}

/// Sentences shorter than this wait for more text ("Dr.", "1.").
const MIN_SENTENCE_CHARS: usize = 12;
/// A clause this long is spoken at the next comma rather than waiting for a full stop.
const MAX_CLAUSE_CHARS: usize = 160;

impl SentenceSplitter {
    /// Adds text; returns the sentences it completed.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buffer.push_str(text);
        let mut out = Vec::new();
        while let Some(cut) = self.boundary() {
            let sentence: String = self.buffer.drain(..cut).collect();
            let sentence = sentence.trim();
            if !sentence.is_empty() {
                out.push(sentence.to_owned());
            }
        }
        out
    }

    /// The rest, at the end of the reply.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buffer);
        let rest = rest.trim();
        (!rest.is_empty()).then(|| rest.to_owned())
    }

    fn boundary(&self) -> Option<usize> {
        let chars: Vec<(usize, char)> = self.buffer.char_indices().collect();
        for (i, (at, c)) in chars.iter().enumerate() {
            let next_is_space = chars.get(i + 1).is_some_and(|(_, n)| n.is_whitespace());
            let end = at + c.len_utf8();
            if matches!(c, '.' | '!' | '?' | '…') && next_is_space && end >= MIN_SENTENCE_CHARS {
                return Some(end);
            }
            if matches!(c, ',' | ';' | ':') && next_is_space && end >= MAX_CLAUSE_CHARS {
                return Some(end);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_across_chunk_boundaries() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"data: {\"a\"").is_empty());
        assert_eq!(
            parser.push(b":1}\n\ndata: [DONE]\n\n"),
            vec!["{\"a\":1}", "[DONE]"]
        );
        assert_eq!(parser.push(b": comment\r\ndata:x\r\n"), vec!["x"]);
    }

    #[test]
    fn sentences_are_cut_at_stops_but_not_too_early() {
        let mut splitter = SentenceSplitter::default();
        assert!(
            splitter.push("Hi. I am").is_empty(),
            "too short to speak alone"
        );
        assert_eq!(
            splitter.push(" here to help. What"),
            vec!["Hi. I am here to help."]
        );
        assert_eq!(splitter.push(" can I do?"), Vec::<String>::new());
        assert_eq!(splitter.finish().as_deref(), Some("What can I do?"));
        assert_eq!(splitter.finish(), None);
    }
}
