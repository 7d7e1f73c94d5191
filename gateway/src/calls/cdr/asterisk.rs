//! CDR JSON as a Grandstream CloudUCM / UCM or another Asterisk PBX sends it, mapped onto the
//! project's own CDR ([`super::cdr::Cdr`]) so that both go through the same bounds.
//!
//! The shape follows Grandstream's "UCM6xxx Series CDR and REC API Guide" (JSON example output:
//! `{"cdr": [{"AcctId": "62", "src": "5300", "dst": "5301", "dcontext": "from-internal",
//! "clid": "\"pn01\" <5300>", "channel": "SIP/5300-00000000", "dstchannel": "SIP/5301-00000001",
//! "start": "2013-12-03 11:46:40", "answer": "2013-12-03 11:46:43", "end": "2013-12-03 11:46:49",
//! "duration": "9", "billsec": "6", "disposition": "ANSWERED", "uniqueid": "1386092800.0",
//! "userfield": "EXT", …}]}`), which carries Asterisk's CDR fields: numbers come as strings,
//! times without a zone, `duration` includes ringing and `billsec` is the talk time.
//!
//! Decisions (see also docs/operating-guide.md, "PBX call detail records"):
//! - The shape is detected from the body, no tenant setting: a top-level array, an object with a
//!   `cdr` or `cdrs` list, or an object with `uniqueid` is PBX-shaped; anything else is the
//!   project's own schema.
//! - `uniqueid` is the dedupe key (the project's `id`).
//! - Times without a zone (`YYYY-MM-DD HH:MM:SS`) are read as UTC (set the PBX's time zone to
//!   UTC); RFC 3339 times are accepted too; an empty `answer`/`end` means none.
//! - The stored duration is `billsec` (talk time, like the project's `duration`); without it,
//!   it is computed from answer and end.
//! - `disposition` sets the call status: `ANSWERED` → completed, `NO ANSWER` → no-answer,
//!   `BUSY` → busy, `FAILED`/`CONGESTION` → failed; the lower-cased disposition is the outcome.
//! - Direction: inbound when `userfield` says `IN`/`Inbound`, when `dcontext` starts with
//!   `ext-did` (a trunk's DID route), or when the calling `channel` is a trunk (`…/trunk_…`);
//!   otherwise outbound (the call was placed by one of the tenant's extensions).
//! - `src`/`dst` are kept when E.164 or a plain string of 1–15 digits (an extension or a
//!   national number: the PBX does not know the country); anything else is refused.

use serde::Deserialize;

use super::{Cdr, CdrError};
use crate::calls::CallStatus;

/// One Asterisk-style CDR. Fields the mapping does not use (`AcctId`, `clid`, `amaflags`, …)
/// are ignored: a PBX sends many and their set varies by firmware.
#[derive(Debug, Deserialize)]
pub struct AsteriskCdr {
    /// Asterisk's unique id of the channel (`1386092800.0`).
    pub uniqueid: String,
    /// Caller number.
    #[serde(default)]
    pub src: Option<String>,
    /// Called number.
    #[serde(default)]
    pub dst: Option<String>,
    /// Start, `YYYY-MM-DD HH:MM:SS` (UTC) or RFC 3339.
    pub start: String,
    /// Answer time; empty when not answered.
    #[serde(default)]
    pub answer: Option<String>,
    /// End time.
    #[serde(default)]
    pub end: Option<String>,
    /// Talk seconds, a string or a number.
    #[serde(default)]
    pub billsec: Option<serde_json::Value>,
    /// `ANSWERED`, `NO ANSWER`, `BUSY`, `FAILED`, `CONGESTION`.
    pub disposition: String,
    /// Calling channel (`SIP/5300-00000000`, `PJSIP/trunk_1-0000002a`).
    #[serde(default)]
    pub channel: Option<String>,
    /// Destination context (`from-internal`, `ext-did-00001`, `ext-local`).
    #[serde(default)]
    pub dcontext: Option<String>,
    /// Grandstream's call type (`IN`, `OUT`, `EXT`, …) where the firmware sets it.
    #[serde(default)]
    pub userfield: Option<String>,
}

/// A PBX-shaped CDR turned into the project's CDR, with what the project's schema cannot say.
#[derive(Debug)]
pub struct Mapped {
    /// The record, checked later by the same bounds as the project's own.
    pub cdr: Cdr,
    /// Status from the disposition.
    pub status: CallStatus,
}

/// Whether a JSON body is PBX-shaped (see the module documentation).
pub fn is_asterisk_shaped(body: &serde_json::Value) -> bool {
    match body {
        serde_json::Value::Array(_) => true,
        serde_json::Value::Object(map) => {
            map.contains_key("cdr") || map.contains_key("cdrs") || map.contains_key("uniqueid")
        }
        _ => false,
    }
}

/// The records of a PBX-shaped body: the array itself, the `cdr`/`cdrs` list, or the object.
pub fn records(body: serde_json::Value) -> Result<Vec<AsteriskCdr>, serde_json::Error> {
    match body {
        serde_json::Value::Object(mut map) if !map.contains_key("uniqueid") => {
            let list = map
                .remove("cdr")
                .or_else(|| map.remove("cdrs"))
                .unwrap_or(serde_json::Value::Array(Vec::new()));
            serde_json::from_value(list)
        }
        serde_json::Value::Array(_) => serde_json::from_value(body),
        one => Ok(vec![serde_json::from_value(one)?]),
    }
}

fn invalid(field: &'static str, code: &'static str, message: &'static str) -> CdrError {
    CdrError::Invalid {
        field,
        code,
        message,
    }
}

/// Longest time string looked at (a time is at most 35 characters in RFC 3339).
const MAX_TIME_LEN: usize = 64;

/// A PBX time as RFC 3339 (zone-less times are UTC); `None` when empty.
fn time(field: &'static str, value: Option<&str>) -> Result<Option<String>, CdrError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.len() > MAX_TIME_LEN {
        return Err(invalid(
            field,
            "invalid_time",
            "expected YYYY-MM-DD HH:MM:SS",
        ));
    }
    if chrono::DateTime::parse_from_rfc3339(value).is_ok() {
        return Ok(Some(value.to_owned()));
    }
    let naive = chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S")
        .map_err(|_| invalid(field, "invalid_time", "expected YYYY-MM-DD HH:MM:SS"))?;
    Ok(Some(naive.and_utc().to_rfc3339()))
}

/// A PBX number: E.164 or 1–15 digits kept as sent, empty means none.
fn number(field: &'static str, value: Option<String>) -> Result<Option<String>, CdrError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let digits = value.strip_prefix('+').unwrap_or(&value);
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            field,
            "invalid_number",
            "expected an E.164 number or 1-15 digits",
        ));
    }
    Ok(Some(value))
}

fn billsec(value: Option<serde_json::Value>) -> Result<Option<i64>, CdrError> {
    let bad = || invalid("billsec", "invalid_duration", "expected whole seconds");
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
        Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

fn status(disposition: &str) -> Result<CallStatus, CdrError> {
    match disposition.trim().to_ascii_uppercase().as_str() {
        "ANSWERED" => Ok(CallStatus::Completed),
        "NO ANSWER" | "NOANSWER" => Ok(CallStatus::NoAnswer),
        "BUSY" => Ok(CallStatus::Busy),
        "FAILED" | "CONGESTION" => Ok(CallStatus::Failed),
        _ => Err(invalid(
            "disposition",
            "invalid_disposition",
            "expected ANSWERED, NO ANSWER, BUSY, FAILED or CONGESTION",
        )),
    }
}

fn direction(cdr: &AsteriskCdr) -> &'static str {
    let userfield = cdr.userfield.as_deref().unwrap_or("").to_ascii_lowercase();
    let from_trunk = cdr
        .channel
        .as_deref()
        .is_some_and(|c| c.split('/').nth(1).is_some_and(|p| p.starts_with("trunk_")));
    let did_route = cdr
        .dcontext
        .as_deref()
        .is_some_and(|c| c.starts_with("ext-did"));
    if matches!(userfield.as_str(), "in" | "inbound") || did_route || from_trunk {
        "inbound"
    } else {
        "outbound"
    }
}

/// Maps one PBX CDR (pure: no clock, no store). Errors name the PBX's field.
pub fn map(cdr: AsteriskCdr) -> Result<Mapped, CdrError> {
    let status = status(&cdr.disposition)?;
    let direction = direction(&cdr).to_owned();
    let start = time("start", Some(&cdr.start))?
        .ok_or_else(|| invalid("start", "invalid_time", "expected YYYY-MM-DD HH:MM:SS"))?;
    Ok(Mapped {
        status,
        cdr: Cdr {
            from: number("src", cdr.src)?,
            to: number("dst", cdr.dst)?,
            direction,
            start,
            answer: time("answer", cdr.answer.as_deref())?,
            end: time("end", cdr.end.as_deref())?,
            duration: billsec(cdr.billsec)?,
            disposition: cdr.disposition.trim().to_ascii_lowercase(),
            id: cdr.uniqueid,
        },
    })
}

/// The PBX's name for a field of the project's schema, for error messages.
pub fn pbx_field(field: &'static str) -> &'static str {
    match field {
        "id" => "uniqueid",
        "from" => "src",
        "to" => "dst",
        "duration" => "billsec",
        "records" => "cdr",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ucm(overrides: serde_json::Value) -> serde_json::Value {
        // As in Grandstream's CDR API guide, plus a trunk call.
        let mut record = json!({"AcctId": "62", "accountcode": "", "src": "5300",
            "dst": "15550102", "dcontext": "from-internal", "clid": "\"pn01\" <5300>",
            "channel": "SIP/5300-00000000", "dstchannel": "SIP/trunk_1/15550102",
            "lastapp": "Dial", "lastdata": "SIP/trunk_1/15550102,60,",
            "start": "2026-11-20 11:46:40", "answer": "2026-11-20 11:46:43",
            "end": "2026-11-20 11:46:49", "duration": "9", "billsec": "6",
            "disposition": "ANSWERED", "amaflags": "DOCUMENTATION", "uniqueid": "1386092800.0",
            "userfield": "OUT", "channel_ext": "5300", "service": "s"});
        for (key, value) in overrides.as_object().unwrap() {
            record[key] = value.clone();
        }
        record
    }

    fn mapped(overrides: serde_json::Value) -> Result<Mapped, CdrError> {
        map(serde_json::from_value(ucm(overrides)).unwrap())
    }

    fn field(error: CdrError) -> &'static str {
        match error {
            CdrError::Invalid { field, .. } => field,
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn shapes_are_detected_from_the_body() {
        assert!(is_asterisk_shaped(&json!([ucm(json!({}))])));
        assert!(is_asterisk_shaped(&json!({"cdr": [ucm(json!({}))]})));
        assert!(is_asterisk_shaped(&json!({"cdrs": []})));
        assert!(is_asterisk_shaped(&ucm(json!({}))));
        assert!(!is_asterisk_shaped(&json!({"records": []})));
        assert!(!is_asterisk_shaped(
            &json!({"id": "x", "direction": "inbound"})
        ));
        assert_eq!(
            records(json!({"cdr": [ucm(json!({})), ucm(json!({}))]}))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(records(json!({"cdrs": [ucm(json!({}))]})).unwrap().len(), 1);
        assert_eq!(records(json!([ucm(json!({}))])).unwrap().len(), 1);
        assert_eq!(records(ucm(json!({}))).unwrap().len(), 1);
        assert!(records(json!({"cdr": [{"src": "1"}]})).is_err());
    }

    #[test]
    fn an_answered_outbound_call_maps_onto_the_projects_record() {
        let m = mapped(json!({})).unwrap();
        assert_eq!(m.status, CallStatus::Completed);
        assert_eq!(m.cdr.id, "1386092800.0");
        assert_eq!(m.cdr.direction, "outbound");
        assert_eq!(m.cdr.from.as_deref(), Some("5300"));
        assert_eq!(m.cdr.to.as_deref(), Some("15550102"));
        assert_eq!(m.cdr.start, "2026-11-20T11:46:40+00:00");
        assert_eq!(m.cdr.answer.as_deref(), Some("2026-11-20T11:46:43+00:00"));
        assert_eq!(m.cdr.end.as_deref(), Some("2026-11-20T11:46:49+00:00"));
        // billsec (talk time), not duration (which includes ringing).
        assert_eq!(m.cdr.duration, Some(6));
        assert_eq!(m.cdr.disposition, "answered");
        assert_eq!(mapped(json!({"billsec": 7})).unwrap().cdr.duration, Some(7));
        assert_eq!(mapped(json!({"billsec": ""})).unwrap().cdr.duration, None);
    }

    #[test]
    fn dispositions_set_the_status() {
        for (disposition, status) in [
            ("NO ANSWER", CallStatus::NoAnswer),
            ("BUSY", CallStatus::Busy),
            ("FAILED", CallStatus::Failed),
            ("CONGESTION", CallStatus::Failed),
        ] {
            let m = mapped(json!({"disposition": disposition, "answer": "", "billsec": "0"}));
            let m = m.unwrap();
            assert_eq!(m.status, status, "{disposition}");
            assert_eq!(m.cdr.answer, None);
        }
        assert_eq!(
            field(mapped(json!({"disposition": "MAYBE"})).unwrap_err()),
            "disposition"
        );
    }

    #[test]
    fn direction_comes_from_userfield_context_or_trunk_channel() {
        let inbound = [
            json!({"userfield": "IN"}),
            json!({"userfield": "Inbound"}),
            json!({"userfield": "", "dcontext": "ext-did-00001"}),
            json!({"userfield": "", "channel": "PJSIP/trunk_2-0000002a"}),
        ];
        for overrides in inbound {
            assert_eq!(
                mapped(overrides.clone()).unwrap().cdr.direction,
                "inbound",
                "{overrides}"
            );
        }
        let internal = json!({"userfield": "EXT", "dcontext": "ext-local"});
        assert_eq!(mapped(internal).unwrap().cdr.direction, "outbound");
    }

    #[test]
    fn bad_fields_are_named_as_the_pbx_names_them() {
        assert_eq!(field(mapped(json!({"src": "alice"})).unwrap_err()), "src");
        assert_eq!(
            field(mapped(json!({"dst": "1234567890123456"})).unwrap_err()),
            "dst"
        );
        assert_eq!(
            field(mapped(json!({"start": "yesterday"})).unwrap_err()),
            "start"
        );
        assert_eq!(field(mapped(json!({"start": ""})).unwrap_err()), "start");
        assert_eq!(
            field(mapped(json!({"end": "2026-13-01 00:00:00"})).unwrap_err()),
            "end"
        );
        assert_eq!(
            field(mapped(json!({"billsec": "six"})).unwrap_err()),
            "billsec"
        );
        assert_eq!(
            field(mapped(json!({"billsec": 1.5})).unwrap_err()),
            "billsec"
        );
        assert_eq!(
            mapped(json!({"src": "+15550101"}))
                .unwrap()
                .cdr
                .from
                .as_deref(),
            Some("+15550101")
        );
        assert_eq!(mapped(json!({"src": ""})).unwrap().cdr.from, None);
        assert_eq!(pbx_field("from"), "src");
        assert_eq!(pbx_field("answer"), "answer");
    }
}
