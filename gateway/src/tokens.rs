//! Access tokens: short-lived HS256 JWTs with issuer, audience, expiry and a key id (`kid`) so
//! the signing secret can be rotated while tokens signed with the previous one stay valid.
//!
//! Refresh tokens are not JWTs: they are random, stored hashed, and rotated on every use (see
//! `store::sessions`); an access token names its session (`sid`) so logout takes effect at once.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::crypto::key_id;

const KEY_ID_DOMAIN: &str = "switchboard-jwt";
/// The audience of access tokens for the gateway's API.
pub const API_AUDIENCE: &str = "switchboard-api";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// User id.
    pub sub: String,
    /// Session id (the refresh-token family), checked for revocation on every request.
    pub sid: String,
    /// Issuer: the gateway's public URL.
    pub iss: String,
    /// Audience: [`API_AUDIENCE`].
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
}

/// Why a token was refused. The HTTP layer answers 401 for all of them alike.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The header names no key or an unknown key.
    #[error("unknown signing key")]
    UnknownKey,
    /// Bad signature, expired, wrong issuer/audience/algorithm, or not a JWT at all.
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

/// Signs and verifies access tokens.
pub struct TokenService {
    current_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    issuer: String,
    ttl_seconds: i64,
}

impl TokenService {
    /// A service signing with `secret` and also accepting tokens signed with `previous`.
    pub fn new(secret: &[u8], previous: &[Vec<u8>], issuer: &str, ttl_seconds: i64) -> Self {
        // Pin the pure-Rust backend even if another crate enables a second one.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        let mut decoding = HashMap::new();
        for key in previous
            .iter()
            .map(Vec::as_slice)
            .chain(std::iter::once(secret))
        {
            decoding.insert(key_id(KEY_ID_DOMAIN, key), DecodingKey::from_secret(key));
        }
        Self {
            current_kid: key_id(KEY_ID_DOMAIN, secret),
            encoding: EncodingKey::from_secret(secret),
            decoding,
            issuer: issuer.to_owned(),
            ttl_seconds,
        }
    }

    /// Seconds an access token lives.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// Issues an access token for `user_id` in `session_id`, valid from `now` (Unix seconds).
    pub fn issue(&self, user_id: &str, session_id: &str, now: i64) -> Result<String, TokenError> {
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iss: self.issuer.clone(),
            aud: API_AUDIENCE.to_owned(),
            iat: now,
            exp: now + self.ttl_seconds,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current_kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }

    /// Verifies signature (by `kid`), algorithm, expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[API_AUDIENCE]);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(jsonwebtoken::decode::<AccessClaims>(token, key, &validation)?.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn service() -> TokenService {
        TokenService::new(SECRET, &[], "https://gw.example", 900)
    }

    #[test]
    fn issued_tokens_verify() {
        let svc = service();
        let token = svc.issue("u1", "s1", now()).unwrap();
        let claims = svc.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("u1", "s1"));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let svc = service();
        let token = svc.issue("u1", "s1", now() - 3600).unwrap();
        assert!(svc.verify(&token).is_err());
    }

    #[test]
    fn wrong_signature_is_refused() {
        let other = TokenService::new(
            b"another-secret-of-32-bytes-length!",
            &[],
            "https://gw.example",
            900,
        );
        let token = other.issue("u1", "s1", now()).unwrap();
        assert!(service().verify(&token).is_err());
        // Same kid, tampered payload.
        let token = service().issue("u1", "s1", now()).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        parts[1] = URL_SAFE_NO_PAD.encode(payload.replace("\"u1\"", "\"u2\""));
        assert!(service().verify(&parts.join(".")).is_err());
    }

    #[test]
    fn alg_none_is_refused() {
        let svc = service();
        let token = svc.issue("u1", "s1", now()).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let kid = svc.current_kid.clone();
        let header =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#));
        assert!(svc.verify(&format!("{header}.{payload}.")).is_err());
        assert!(svc.verify(&format!("{header}.{payload}")).is_err());
    }

    #[test]
    fn wrong_audience_or_issuer_is_refused() {
        let svc = service();
        let other_issuer = TokenService::new(SECRET, &[], "https://evil.example", 900);
        assert!(
            svc.verify(&other_issuer.issue("u1", "s1", now()).unwrap())
                .is_err()
        );
        let claims = AccessClaims {
            sub: "u1".into(),
            sid: "s1".into(),
            iss: "https://gw.example".into(),
            aud: "another-api".into(),
            iat: now(),
            exp: now() + 60,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(svc.current_kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(svc.verify(&token).is_err());
    }

    #[test]
    fn rotation_accepts_previous_secret_by_kid() {
        let old = service();
        let token = old.issue("u1", "s1", now()).unwrap();
        let rotated = TokenService::new(
            b"the-new-secret-is-also-32-bytes!!",
            &[SECRET.to_vec()],
            "https://gw.example",
            900,
        );
        assert!(rotated.verify(&token).is_ok());
        let without_old = TokenService::new(
            b"the-new-secret-is-also-32-bytes!!",
            &[],
            "https://gw.example",
            900,
        );
        assert!(matches!(
            without_old.verify(&token),
            Err(TokenError::UnknownKey)
        ));
    }
}
