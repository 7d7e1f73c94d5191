//! Reading the TwiML a voice webhook answers, the way Twilio executes it: verbs run in order,
//! `<Connect><Stream>` hands the call to a media stream, `<Reject>` and `<Hangup>` end it, and
//! a document that runs out of verbs ends the call too.

use serde::Serialize;

/// What the gateway told the carrier to do with the call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Answer {
    /// Connect the call to a bidirectional media stream.
    Stream(StreamTarget),
    /// The call is not connected.
    Refused(Refusal),
}

/// A `<Connect><Stream>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamTarget {
    /// The WebSocket URL (`wss://…`).
    pub url: String,
    /// `<Parameter name value>` children, in document order; they become
    /// `start.customParameters`.
    pub parameters: Vec<(String, String)>,
    /// Text of `<Say>` verbs played before the stream.
    pub said: Vec<String>,
}

/// Why and how the call ended without a stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// Text of `<Say>` verbs spoken to the caller.
    pub said: Vec<String>,
    /// `<Reject reason>` (`rejected` or `busy`), when the call was rejected.
    pub rejected: Option<String>,
    /// Whether an explicit `<Hangup>` ended the call.
    pub hung_up: bool,
}

impl Refusal {
    /// One line for people: what was said and how the call ended.
    pub fn describe(&self) -> String {
        let ending = match (&self.rejected, self.hung_up) {
            (Some(reason), _) => format!("rejected ({reason})"),
            (None, true) => "hung up".to_owned(),
            (None, false) => "ended without connecting a media stream".to_owned(),
        };
        if self.said.is_empty() {
            format!("the gateway {ending}")
        } else {
            format!("the gateway said \"{}\" and {ending}", self.said.join(" "))
        }
    }
}

/// Why a TwiML document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TwimlError {
    /// Not well-formed XML.
    #[error("the webhook answer is not XML")]
    Xml(#[from] roxmltree::Error),
    /// The root element is not `<Response>`.
    #[error("the webhook answer is not TwiML: root element is <{0}>, expected <Response>")]
    NotResponse(String),
    /// A `<Stream>` has no `url`.
    #[error("<Stream> has no url attribute")]
    StreamWithoutUrl,
    /// `<Connect>` holds no `<Stream>`.
    #[error("<Connect> holds no <Stream> (only media streams are simulated)")]
    ConnectWithoutStream,
}

/// Reads a TwiML `<Response>`.
pub fn parse(xml: &str) -> Result<Answer, TwimlError> {
    let document = roxmltree::Document::parse(xml)?;
    let root = document.root_element();
    if root.tag_name().name() != "Response" {
        return Err(TwimlError::NotResponse(root.tag_name().name().to_owned()));
    }
    let mut said = Vec::new();
    for verb in root.children().filter(roxmltree::Node::is_element) {
        match verb.tag_name().name() {
            "Say" => said.push(text_of(verb)),
            "Reject" => {
                return Ok(Answer::Refused(Refusal {
                    said,
                    rejected: Some(verb.attribute("reason").unwrap_or("rejected").to_owned()),
                    hung_up: false,
                }));
            }
            "Hangup" => {
                return Ok(Answer::Refused(Refusal {
                    said,
                    rejected: None,
                    hung_up: true,
                }));
            }
            "Connect" => return connect(verb, said).map(Answer::Stream),
            // <Pause>, <Play> and the rest only take time on a real call.
            _ => {}
        }
    }
    Ok(Answer::Refused(Refusal {
        said,
        rejected: None,
        hung_up: false,
    }))
}

fn connect(verb: roxmltree::Node<'_, '_>, said: Vec<String>) -> Result<StreamTarget, TwimlError> {
    let stream = verb
        .children()
        .find(|n| n.is_element() && n.tag_name().name() == "Stream")
        .ok_or(TwimlError::ConnectWithoutStream)?;
    let url = stream
        .attribute("url")
        .filter(|u| !u.trim().is_empty())
        .ok_or(TwimlError::StreamWithoutUrl)?;
    let parameters = stream
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "Parameter")
        .filter_map(|p| {
            Some((
                p.attribute("name")?.to_owned(),
                p.attribute("value").unwrap_or_default().to_owned(),
            ))
        })
        .collect();
    Ok(StreamTarget {
        url: url.trim().to_owned(),
        parameters,
        said,
    })
}

fn text_of(node: roxmltree::Node<'_, '_>) -> String {
    let text: String = node
        .descendants()
        .filter(roxmltree::Node::is_text)
        .filter_map(|t| t.text())
        .collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_stream_with_parameters() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Connect><Stream url="wss://gw.example.com/media">
  <Parameter name="callToken" value="abc.def"/><Parameter name="tenant" value="acme"/>
</Stream></Connect></Response>"#;
        let Answer::Stream(target) = parse(xml).unwrap() else {
            panic!("not a stream")
        };
        assert_eq!(target.url, "wss://gw.example.com/media");
        assert_eq!(
            target.parameters,
            vec![
                ("callToken".to_owned(), "abc.def".to_owned()),
                ("tenant".to_owned(), "acme".to_owned())
            ]
        );
    }

    #[test]
    fn refusals_keep_what_was_said_and_how_it_ended() {
        let Answer::Refused(r) = parse(
            "<Response><Say voice=\"alice\">Sorry, this number has reached\n its limit.</Say><Hangup/></Response>",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(r.said, vec!["Sorry, this number has reached its limit."]);
        assert!(r.hung_up);
        assert!(r.describe().contains("reached its limit"));
        let Answer::Refused(r) = parse("<Response><Reject reason=\"busy\"/></Response>").unwrap()
        else {
            panic!()
        };
        assert_eq!(r.rejected.as_deref(), Some("busy"));
        // Verbs after a hang-up never run.
        let answer =
            parse("<Response><Hangup/><Connect><Stream url=\"wss://x\"/></Connect></Response>")
                .unwrap();
        assert!(matches!(answer, Answer::Refused(_)));
        // Running out of verbs ends the call.
        assert!(matches!(parse("<Response/>").unwrap(), Answer::Refused(_)));
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(matches!(parse("{\"ok\":true}"), Err(TwimlError::Xml(_))));
        assert!(matches!(parse("<Html/>"), Err(TwimlError::NotResponse(_))));
        assert!(matches!(
            parse("<Response><Connect><Stream/></Connect></Response>"),
            Err(TwimlError::StreamWithoutUrl)
        ));
        assert!(matches!(
            parse("<Response><Connect><Room/></Connect></Response>"),
            Err(TwimlError::ConnectWithoutStream)
        ));
    }
}
