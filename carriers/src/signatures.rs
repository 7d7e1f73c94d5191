//! Webhook signature verification (and, for simulators and tests, computation).
//!
//! * Twilio `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the auth token, over the full
//!   URL followed by every form parameter as `name + value`, names sorted (values of a
//!   repeated name sorted too). Like Twilio's SDKs we accept the URL with or without its
//!   default port. JSON webhooks carry `bodySHA256` (hex SHA-256 of the body) in the query
//!   string instead of form parameters; then the body hash must match as well.
//! * Telnyx `telnyx-signature-ed25519`: base64 Ed25519 signature over `"{timestamp}|{body}"`
//!   with the account's public key; `telnyx-timestamp` must be within 300 s of now.
//!
//! Every comparison of secret-derived bytes is constant-time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// Header carrying Twilio's signature.
pub const TWILIO_SIGNATURE_HEADER: &str = "X-Twilio-Signature";
/// Header carrying Telnyx's Ed25519 signature.
pub const TELNYX_SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
/// Header carrying the Unix time Telnyx signed at.
pub const TELNYX_TIMESTAMP_HEADER: &str = "telnyx-timestamp";
/// How far a Telnyx timestamp may be from now, in seconds (the SDKs' default).
pub const TELNYX_TOLERANCE_SECS: i64 = 300;

/// Why a webhook signature was rejected. Messages are safe to log; they never contain keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature header was absent or empty.
    #[error("signature header missing")]
    Missing,
    /// The header or key could not be decoded.
    #[error("malformed signature or key: {0}")]
    Malformed(&'static str),
    /// The signature does not match the request.
    #[error("signature does not match")]
    Mismatch,
    /// The JSON body does not match the URL's `bodySHA256`.
    #[error("body hash does not match bodySHA256")]
    BodyMismatch,
    /// The Telnyx timestamp is too far from now (replay or clock skew).
    #[error("timestamp outside the {TELNYX_TOLERANCE_SECS} s tolerance")]
    Stale,
}

type HmacSha1 = Hmac<Sha1>;

/// Computes Twilio's `X-Twilio-Signature` for a request to `url` with form `params`.
///
/// For JSON webhooks pass the URL including `bodySHA256` and no params.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(twilio_mac(auth_token, url, params))
}

fn twilio_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty MAC that
    // matches nothing rather than panic.
    let Ok(mut mac) = HmacSha1::new_from_slice(auth_token.as_bytes()) else {
        return Vec::new();
    };
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

/// Hex SHA-256 of a body, as Twilio puts it in `bodySHA256`.
pub fn body_sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Verifies a Twilio form-encoded webhook: `url` is the full public URL Twilio called
/// (scheme, host, path and query), `params` the decoded form body.
pub fn verify_twilio_form(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> Result<(), SignatureError> {
    verify_twilio_mac(auth_token, url, params, signature)
}

/// Verifies a Twilio JSON webhook: the URL carries `bodySHA256`, which must match `body`,
/// and the signature covers the URL alone.
pub fn verify_twilio_json(
    auth_token: &str,
    url: &str,
    body: &[u8],
    signature: &str,
) -> Result<(), SignatureError> {
    verify_twilio_mac(auth_token, url, &[], signature)?;
    let claimed = query_param(url, "bodySHA256").ok_or(SignatureError::BodyMismatch)?;
    let actual = body_sha256_hex(body);
    if bool::from(
        claimed
            .to_ascii_lowercase()
            .as_bytes()
            .ct_eq(actual.as_bytes()),
    ) {
        Ok(())
    } else {
        Err(SignatureError::BodyMismatch)
    }
}

/// Verifies a Twilio webhook of either kind: JSON when the URL carries `bodySHA256`,
/// form-encoded otherwise.
pub fn verify_twilio(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    body: &[u8],
    signature: &str,
) -> Result<(), SignatureError> {
    if query_param(url, "bodySHA256").is_some() {
        verify_twilio_json(auth_token, url, body, signature)
    } else {
        verify_twilio_form(auth_token, url, params, signature)
    }
}

fn verify_twilio_mac(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> Result<(), SignatureError> {
    let signature = signature.trim();
    if signature.is_empty() {
        return Err(SignatureError::Missing);
    }
    let given = BASE64
        .decode(signature)
        .map_err(|_| SignatureError::Malformed("signature is not base64"))?;
    // Try every spelling of the URL without short-circuiting on which one matched, so the
    // time taken does not reveal anything about the expected value.
    let mut matched = subtle::Choice::from(0u8);
    for candidate in url_variants(url) {
        matched |= twilio_mac(auth_token, &candidate, params).ct_eq(&given);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The URL as given, with its default port added, and with any port removed — the spellings
/// Twilio's SDKs accept, because proxies disagree on whether the port is part of the URL.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return variants;
    };
    let default_port = match parsed.scheme() {
        "https" => 443,
        "http" => 80,
        _ => return variants,
    };
    // `Url` hides a port equal to the scheme's default, so splice the authority by hand.
    let Some(host) = parsed.host_str() else {
        return variants;
    };
    let after_scheme = &url[parsed.scheme().len() + 3..];
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    let rest = &after_scheme[authority_end..];
    let userinfo = authority
        .rfind('@')
        .map(|at| &authority[..=at])
        .unwrap_or("");
    let scheme = parsed.scheme();
    let with_port = format!(
        "{scheme}://{userinfo}{host}:{}{rest}",
        parsed.port().unwrap_or(default_port)
    );
    let without_port = format!("{scheme}://{userinfo}{host}{rest}");
    for v in [with_port, without_port] {
        if !variants.contains(&v) {
            variants.push(v);
        }
    }
    variants
}

/// The first value of query parameter `name` in `url`, percent-decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A Telnyx webhook public key (base64 of the raw 32-byte Ed25519 key from Mission Control).
#[derive(Clone, Debug)]
pub struct TelnyxPublicKey(VerifyingKey);

impl TelnyxPublicKey {
    /// Decodes the base64 key as shown in the Telnyx portal.
    pub fn from_base64(key: &str) -> Result<Self, SignatureError> {
        let bytes = BASE64
            .decode(key.trim())
            .map_err(|_| SignatureError::Malformed("public key is not base64"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SignatureError::Malformed("public key is not 32 bytes"))?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| SignatureError::Malformed("public key is not a valid Ed25519 point"))
    }
}

/// Verifies a Telnyx webhook: `signature` and `timestamp` are the header values, `body` the
/// raw body, `now_unix` the current Unix time in seconds.
pub fn verify_telnyx(
    key: &TelnyxPublicKey,
    signature: &str,
    timestamp: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    if signature.trim().is_empty() || timestamp.trim().is_empty() {
        return Err(SignatureError::Missing);
    }
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed("timestamp is not an integer"))?;
    // Checked: a timestamp near i64::MIN must not wrap around into the window (or panic).
    if now_unix
        .checked_sub(ts)
        .is_none_or(|skew| skew.unsigned_abs() > TELNYX_TOLERANCE_SECS.unsigned_abs())
    {
        return Err(SignatureError::Stale);
    }
    let sig_bytes = BASE64
        .decode(signature.trim())
        .map_err(|_| SignatureError::Malformed("signature is not base64"))?;
    let sig = Signature::from_slice(&sig_bytes)
        .map_err(|_| SignatureError::Malformed("signature is not 64 bytes"))?;
    // Ed25519 verification does not branch on secret data, so it is constant-time already.
    key.0
        .verify(&telnyx_message(timestamp.trim(), body), &sig)
        .map_err(|_| SignatureError::Mismatch)
}

/// The bytes Telnyx signs: `"{timestamp}|{body}"`.
pub fn telnyx_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'|');
    message.extend_from_slice(body);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Issue 15 item 8: a timestamp of now − 2^63 used to wrap around into the window (and
    /// panic in debug builds) before the signature was looked at; it is stale.
    #[test]
    fn telnyx_timestamps_far_in_the_past_or_future_are_stale_without_overflow() {
        // The Ed25519 base point (0x58, then 0x66 × 31): a valid public key; nothing needs to
        // verify against it, staleness is decided first.
        let mut point = [0x66u8; 32];
        point[0] = 0x58;
        let key = TelnyxPublicKey::from_base64(&BASE64.encode(point)).unwrap();
        let signature = BASE64.encode([0u8; 64]);
        let now: i64 = 1_800_000_000;
        for timestamp in [i64::MIN, now.wrapping_sub(i64::MAX), i64::MAX, now - 301] {
            assert_eq!(
                verify_telnyx(&key, &signature, &timestamp.to_string(), b"{}", now),
                Err(SignatureError::Stale),
                "{timestamp}"
            );
        }
    }

    #[test]
    fn url_variants_add_and_strip_default_ports() {
        let v = url_variants("https://example.com/hook?x=1");
        assert!(v.contains(&"https://example.com:443/hook?x=1".to_owned()));
        let v = url_variants("https://example.com:443/hook");
        assert!(v.contains(&"https://example.com/hook".to_owned()));
        let v = url_variants("http://example.com:8080/hook");
        assert!(v.contains(&"http://example.com/hook".to_owned()));
        assert!(v.contains(&"http://example.com:8080/hook".to_owned()));
    }

    #[test]
    fn parameters_are_sorted_by_name_then_value() {
        // Repeated names with values in different orders sign identically.
        let a = twilio_signature(
            "tok",
            "https://x/y",
            &p(&[("B", "2"), ("A", "z"), ("A", "a")]),
        );
        let b = twilio_signature(
            "tok",
            "https://x/y",
            &p(&[("A", "a"), ("A", "z"), ("B", "2")]),
        );
        assert_eq!(a, b);
    }
}
