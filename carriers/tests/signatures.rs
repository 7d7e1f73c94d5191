//! Webhook signature checks against published vectors and round trips.

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use switchboard_carriers::signatures::{
    SignatureError, TelnyxPublicKey, body_sha256_hex, telnyx_message, twilio_signature,
    verify_telnyx, verify_twilio, verify_twilio_form, verify_twilio_json,
};

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The example from Twilio's webhook-security docs (auth token `12345`).
fn twilio_docs_example() -> (&'static str, Vec<(String, String)>) {
    (
        "https://mycompany.com/myapp.php?foo=1&bar=2",
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]),
    )
}

#[test]
fn twilio_docs_vector_verifies() {
    let (url, params) = twilio_docs_example();
    assert_eq!(
        twilio_signature("12345", url, &params),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
    verify_twilio_form("12345", url, &params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=").unwrap();
}

#[test]
fn twilio_rejects_tampering_wrong_token_and_junk() {
    let (url, mut params) = twilio_docs_example();
    let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    assert_eq!(
        verify_twilio_form("54321", url, &params, good),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_twilio_form(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            good
        ),
        Err(SignatureError::Mismatch)
    );
    params[2].1 = "9999".into();
    assert_eq!(
        verify_twilio_form("12345", url, &params, good),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_twilio_form("12345", url, &params, ""),
        Err(SignatureError::Missing)
    );
    assert!(matches!(
        verify_twilio_form("12345", url, &params, "not base64!"),
        Err(SignatureError::Malformed(_))
    ));
}

#[test]
fn twilio_accepts_the_url_with_or_without_its_default_port() {
    let (_, params) = twilio_docs_example();
    let signed_with_port = twilio_signature(
        "12345",
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        &params,
    );
    verify_twilio_form(
        "12345",
        "https://mycompany.com/myapp.php?foo=1&bar=2",
        &params,
        &signed_with_port,
    )
    .unwrap();
    let signed_without = twilio_signature(
        "12345",
        "https://mycompany.com/myapp.php?foo=1&bar=2",
        &params,
    );
    verify_twilio_form(
        "12345",
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        &params,
        &signed_without,
    )
    .unwrap();
    // A non-default port is part of the URL: it may be stripped, but not swapped for another.
    let signed_8443 = twilio_signature("12345", "https://mycompany.com:8443/hook", &params);
    assert_eq!(
        verify_twilio_form(
            "12345",
            "https://mycompany.com:9443/hook",
            &params,
            &signed_8443
        ),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn twilio_json_webhooks_check_body_sha256() {
    // Body and hash from Twilio's JSON signature-validation sample.
    let body = br#"{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}"#;
    let hash = "5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9";
    assert_eq!(body_sha256_hex(body), hash);
    let url = format!("https://example.com/myapp?bodySHA256={hash}");
    let signature = twilio_signature("12345", &url, &[]);
    verify_twilio_json("12345", &url, body, &signature).unwrap();
    verify_twilio("12345", &url, &[], body, &signature).unwrap();
    // Same URL and signature, different body: the hash no longer matches.
    assert_eq!(
        verify_twilio_json("12345", &url, br#"{"CallSid":"CAevil"}"#, &signature),
        Err(SignatureError::BodyMismatch)
    );
}

fn telnyx_keys() -> (SigningKey, TelnyxPublicKey) {
    let signing = SigningKey::from_bytes(&[7u8; 32]);
    let public =
        base64::engine::general_purpose::STANDARD.encode(signing.verifying_key().to_bytes());
    (signing, TelnyxPublicKey::from_base64(&public).unwrap())
}

fn telnyx_sign(key: &SigningKey, ts: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.sign(&telnyx_message(ts, body)).to_bytes())
}

#[test]
fn telnyx_signature_round_trips_and_rejects_tampering() {
    let (signing, public) = telnyx_keys();
    let body = br#"{"data":{"event_type":"call.initiated","payload":{"call_control_id":"v3:x"}}}"#;
    let now = 1_790_000_000;
    let sig = telnyx_sign(&signing, "1790000000", body);
    verify_telnyx(&public, &sig, "1790000000", body, now).unwrap();
    assert_eq!(
        verify_telnyx(&public, &sig, "1790000000", b"{}", now),
        Err(SignatureError::Mismatch)
    );
    // The timestamp is part of the signed message.
    assert_eq!(
        verify_telnyx(&public, &sig, "1790000001", body, now),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn telnyx_enforces_the_300_second_window() {
    let (signing, public) = telnyx_keys();
    let body = b"{}";
    let sig = telnyx_sign(&signing, "1000", body);
    verify_telnyx(&public, &sig, "1000", body, 1300).unwrap();
    verify_telnyx(&public, &sig, "1000", body, 700).unwrap();
    assert_eq!(
        verify_telnyx(&public, &sig, "1000", body, 1301),
        Err(SignatureError::Stale)
    );
    assert_eq!(
        verify_telnyx(&public, &sig, "1000", body, 699),
        Err(SignatureError::Stale)
    );
}

#[test]
fn telnyx_rejects_malformed_input() {
    let (_, public) = telnyx_keys();
    assert_eq!(
        verify_telnyx(&public, "", "1", b"", 1),
        Err(SignatureError::Missing)
    );
    assert!(matches!(
        verify_telnyx(&public, "AAAA", "x", b"", 1),
        Err(SignatureError::Malformed(_))
    ));
    assert!(matches!(
        verify_telnyx(&public, "AAAA", "1", b"", 1),
        Err(SignatureError::Malformed(_))
    ));
    assert!(matches!(
        TelnyxPublicKey::from_base64("c2hvcnQ="),
        Err(SignatureError::Malformed(_))
    ));
}
