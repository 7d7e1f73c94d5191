//! Short-lived call tokens: the voice webhook issues one per admitted call and passes it to
//! the carrier as a stream `<Parameter>`; the media entry accepts a stream only with a valid,
//! unexpired token, so nobody can reach a tenant's runtime by dialling the WebSocket directly.
//!
//! Format: `base64url(claims JSON) "." base64url(HMAC-SHA256(key, first part))`. Verification
//! recomputes the MAC and compares in constant time (`Mac::verify_slice`) before parsing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The `carrier` of a test call's record and token: the console's browser speaks the Twilio
/// media-stream dialect directly to the media entry, no carrier involved.
pub const TEST_CALL_CARRIER: &str = "browser";

/// What a call token grants: one call of one tenant until `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallClaims {
    /// Tenant id.
    pub tenant_id: String,
    /// Tenant slug (names the runtime Service).
    pub slug: String,
    /// Gateway call id.
    pub call_id: String,
    /// `twilio`, `telnyx` or `sandbox` (picks the runtime's media path).
    pub carrier: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// The agent a test call tests (the console's "call it now"); the media proxy passes it
    /// to the runtime as the stream's `agent`, which picks it before any other rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// Why a call token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallTokenError {
    /// Not two base64url parts, or the claims are not JSON.
    #[error("malformed call token")]
    Malformed,
    /// The MAC does not match (wrong key or tampered claims).
    #[error("call token signature does not match")]
    BadSignature,
    /// Past its expiry.
    #[error("call token expired")]
    Expired,
}

/// Issues and verifies call tokens with one key.
#[derive(Clone)]
pub struct CallTokens {
    mac: HmacSha256,
    ttl_seconds: i64,
}

impl std::fmt::Debug for CallTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallTokens")
            .field("ttl_seconds", &self.ttl_seconds)
            .finish_non_exhaustive()
    }
}

impl CallTokens {
    /// A signer with `key` whose tokens live `ttl_seconds`.
    pub fn new(key: &[u8], ttl_seconds: i64) -> Self {
        // HMAC accepts keys of any length, so the fallback (a zero block key) is never used;
        // it only keeps this constructor free of panics.
        let mac = <HmacSha256 as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()));
        Self {
            mac,
            ttl_seconds: ttl_seconds.max(1),
        }
    }

    fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// A token for this call, valid from `now` (Unix seconds) for the configured lifetime.
    pub fn issue(
        &self,
        tenant_id: &str,
        slug: &str,
        call_id: &str,
        carrier: &str,
        now: i64,
    ) -> String {
        self.sign(&CallClaims {
            tenant_id: tenant_id.to_owned(),
            slug: slug.to_owned(),
            call_id: call_id.to_owned(),
            carrier: carrier.to_owned(),
            exp: now + self.ttl_seconds,
            agent: None,
        })
    }

    /// A token for a test call of the tenant's agent `agent`, valid from `now` (Unix
    /// seconds) for the configured lifetime.
    pub fn issue_test_call(
        &self,
        tenant_id: &str,
        slug: &str,
        call_id: &str,
        agent: &str,
        now: i64,
    ) -> String {
        self.sign(&CallClaims {
            tenant_id: tenant_id.to_owned(),
            slug: slug.to_owned(),
            call_id: call_id.to_owned(),
            carrier: TEST_CALL_CARRIER.to_owned(),
            exp: now + self.ttl_seconds,
            agent: Some(agent.to_owned()),
        })
    }

    /// The token's lifetime in seconds.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    fn sign(&self, claims: &CallClaims) -> String {
        // Serialising a struct of strings and an integer cannot fail.
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(json);
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{signature}")
    }

    /// The claims of a valid, unexpired token.
    pub fn verify(&self, token: &str, now: i64) -> Result<CallClaims, CallTokenError> {
        let (body, signature) = token
            .trim()
            .split_once('.')
            .ok_or(CallTokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| CallTokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| CallTokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CallTokenError::Malformed)?;
        let claims: CallClaims =
            serde_json::from_slice(&json).map_err(|_| CallTokenError::Malformed)?;
        if claims.exp < now {
            return Err(CallTokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_tokens_round_trip_and_bad_ones_fail() {
        let tokens = CallTokens::new(b"k1", 60);
        let token = tokens.issue("t1", "acme", "c1", "twilio", 1_000);
        let claims = tokens.verify(&token, 1_030).unwrap();
        assert_eq!(
            (claims.tenant_id.as_str(), claims.call_id.as_str()),
            ("t1", "c1")
        );
        assert_eq!(tokens.verify(&token, 1_061), Err(CallTokenError::Expired));
        let other = CallTokens::new(b"k2", 60);
        assert_eq!(
            other.verify(&token, 1_030),
            Err(CallTokenError::BadSignature)
        );
        let (body, sig) = token.split_once('.').unwrap();
        let forged_claims = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(body).unwrap())
                .unwrap()
                .replace("t1", "t2"),
        );
        assert_eq!(
            tokens.verify(&format!("{forged_claims}.{sig}"), 1_030),
            Err(CallTokenError::BadSignature)
        );
        assert_eq!(tokens.verify("nonsense", 0), Err(CallTokenError::Malformed));
        assert_eq!(claims.agent, None);
    }

    #[test]
    fn a_test_call_token_names_its_agent_under_the_signature() {
        let tokens = CallTokens::new(b"k1", 60);
        let token = tokens.issue_test_call("t1", "acme", "c1", "sales", 1_000);
        let claims = tokens.verify(&token, 1_001).unwrap();
        assert_eq!(claims.agent.as_deref(), Some("sales"));
        assert_eq!(claims.carrier, TEST_CALL_CARRIER);
        let (body, sig) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(body).unwrap())
                .unwrap()
                .replace("sales", "other"),
        );
        assert_eq!(
            tokens.verify(&format!("{forged}.{sig}"), 1_001),
            Err(CallTokenError::BadSignature)
        );
    }
}
