//! How an agent takes turns on a call: which voice-activity detector listens, how much speech
//! confirms that the caller is talking (and may interrupt the agent), and how the wait for the
//! end of the caller's turn adapts to a streaming transcript.
//!
//! Every field is optional: the runtime fills in its defaults (chosen by the turn-taking
//! evaluation in the README), so an agent that says nothing gets the measured best.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Voice-activity detectors.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum VadChoice {
    /// A small neural network (earshot): tells speech from coughs, music and line noise.
    Neural,
    /// Level above the line's noise floor: cheaper, but loud non-speech passes as speech.
    Energy,
}

/// Turn-taking settings of an agent (all optional; the runtime's defaults apply).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.completeSentenceSilenceMs) || !has(self.incompleteSilenceMs) || self.completeSentenceSilenceMs <= self.incompleteSilenceMs").message("completeSentenceSilenceMs must not exceed incompleteSilenceMs"))]
pub struct TurnTakingSpec {
    /// Voice-activity detector (default `neural`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vad: Option<VadChoice>,
    /// Milliseconds of speech that confirm the caller is talking and may interrupt the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 600))]
    pub barge_in_confirm_ms: Option<i32>,
    /// Adapt the end-of-turn wait to the streaming transcript and the STT's end-of-speech
    /// events (Deepgram only; default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive_end_of_turn: Option<bool>,
    /// Silence that ends the turn after a complete sentence (adaptive only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 5000))]
    pub complete_sentence_silence_ms: Option<i32>,
    /// Silence that ends the turn after a trailing "and…" or filler (adaptive only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 10000))]
    pub incomplete_silence_ms: Option<i32>,
    /// Longest silence any turn waits for, whatever the transcript says (adaptive only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 10000))]
    pub max_silence_ms: Option<i32>,
}

impl TurnTakingSpec {
    /// True when nothing is set (the runtime's defaults apply).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Checks the ranges the CRD schema enforces, for specs that arrive by API.
    pub fn validate(&self) -> Result<(), String> {
        let ranges = [
            ("bargeInConfirmMs", self.barge_in_confirm_ms, 60, 600),
            (
                "completeSentenceSilenceMs",
                self.complete_sentence_silence_ms,
                100,
                5000,
            ),
            (
                "incompleteSilenceMs",
                self.incomplete_silence_ms,
                100,
                10000,
            ),
            ("maxSilenceMs", self.max_silence_ms, 100, 10000),
        ];
        for (field, value, min, max) in ranges {
            if let Some(value) = value
                && !(min..=max).contains(&value)
            {
                return Err(format!(
                    "turnTaking.{field} must be between {min} and {max}"
                ));
            }
        }
        if let (Some(complete), Some(incomplete)) = (
            self.complete_sentence_silence_ms,
            self.incomplete_silence_ms,
        ) && complete > incomplete
        {
            return Err(
                "turnTaking.completeSentenceSilenceMs must not exceed incompleteSilenceMs".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_by_default_and_camel_case_on_the_wire() {
        let spec: TurnTakingSpec = serde_json::from_str("{}").unwrap();
        assert!(spec.is_default());
        let spec: TurnTakingSpec = serde_json::from_value(serde_json::json!({
            "vad": "energy", "bargeInConfirmMs": 240, "adaptiveEndOfTurn": false,
            "completeSentenceSilenceMs": 250, "incompleteSilenceMs": 1800, "maxSilenceMs": 3000
        }))
        .unwrap();
        assert_eq!(spec.vad, Some(VadChoice::Energy));
        assert_eq!(spec.barge_in_confirm_ms, Some(240));
        assert!(spec.validate().is_ok());
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let spec = TurnTakingSpec {
            barge_in_confirm_ms: Some(5),
            ..TurnTakingSpec::default()
        };
        assert!(spec.validate().unwrap_err().contains("bargeInConfirmMs"));
        let spec = TurnTakingSpec {
            complete_sentence_silence_ms: Some(900),
            incomplete_silence_ms: Some(400),
            ..TurnTakingSpec::default()
        };
        assert!(
            spec.validate()
                .unwrap_err()
                .contains("completeSentenceSilenceMs")
        );
    }
}
