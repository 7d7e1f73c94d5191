//! Per-tenant runtime credentials: the bearer token a tenant's runtime presents on
//! `POST /internal/v1/events`, which admits events of that tenant only.
//!
//! A credential is `sbrt1.{tenant id}.{epoch}.{mac}`, where `mac` is HMAC-SHA256 over the
//! tenant id and the epoch under the gateway's runtime-credential key
//! (`SWITCHBOARD_RUNTIME_CREDENTIAL_SECRET`, or one derived from `JWT_SECRET`). Nothing
//! secret is stored: the database keeps each tenant's epoch (`tenants.runtime_credential_epoch`,
//! 1 at creation), and rotating bumps it, which invalidates the previous credential at once.
//! The gateway writes the current credential into the Secret `runtime-credential` of the
//! tenant's namespace (`switchboard_crds::naming`) along with its provider keys, from the
//! tenant's creation on ([`crate::provider_keys`]).
//!
//! Why derived rather than random and stored: every gateway replica can verify and re-issue
//! it from the epoch alone, so the Secret can be rewritten at any time (retries, a recreated
//! namespace) without keeping a plaintext or encrypted copy of the token in the database.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Prefix and version of the credential format.
const PREFIX: &str = "sbrt1";

/// Issues and verifies runtime credentials (cheap to clone).
#[derive(Clone)]
pub struct RuntimeCredentials {
    key: [u8; 32],
}

impl std::fmt::Debug for RuntimeCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuntimeCredentials(***)")
    }
}

/// What a presented credential claims, before it is checked against the tenant's epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// The tenant id the credential names.
    pub tenant_id: String,
    /// The epoch it was issued for.
    pub epoch: i64,
}

impl RuntimeCredentials {
    /// Credentials under `configured` (`SWITCHBOARD_RUNTIME_CREDENTIAL_SECRET`) or, when
    /// unset, a key derived from the JWT secret (domain-separated, so the two never coincide).
    pub fn new(configured: Option<&str>, jwt_secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        match configured {
            Some(secret) => {
                hasher.update(b"switchboard runtime credential key\0");
                hasher.update(secret.as_bytes());
            }
            None => {
                hasher.update(b"switchboard runtime credential\0");
                hasher.update(jwt_secret);
            }
        }
        Self {
            key: hasher.finalize().into(),
        }
    }

    fn mac(&self, tenant_id: &str, epoch: i64) -> Hmac<Sha256> {
        // A 32-byte key is always accepted by HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(tenant_id.as_bytes());
        mac.update(b"\0");
        mac.update(&epoch.to_be_bytes());
        mac
    }

    /// The credential of tenant `tenant_id` at `epoch`.
    pub fn issue(&self, tenant_id: &str, epoch: i64) -> String {
        let tag = hex::encode(self.mac(tenant_id, epoch).finalize().into_bytes());
        format!("{PREFIX}.{tenant_id}.{epoch}.{tag}")
    }

    /// The tenant and epoch a presented token names, if its MAC is ours (checked in constant
    /// time). The caller still compares the epoch with the tenant's current one.
    pub fn verify(&self, token: &str) -> Option<Presented> {
        let mut parts = token.trim().splitn(4, '.');
        let (prefix, tenant_id, epoch, tag) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if prefix != PREFIX || tenant_id.is_empty() || tenant_id.len() > 64 {
            return None;
        }
        let epoch: i64 = epoch.parse().ok()?;
        let tag = hex::decode(tag).ok()?;
        self.mac(tenant_id, epoch).verify_slice(&tag).ok()?;
        Some(Presented {
            tenant_id: tenant_id.to_owned(),
            epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_names_its_tenant_and_epoch_and_cannot_be_forged() {
        let credentials = RuntimeCredentials::new(None, b"jwt secret of at least 32 bytes!!");
        let token = credentials.issue("t-1", 3);
        assert_eq!(
            credentials.verify(&token),
            Some(Presented {
                tenant_id: "t-1".into(),
                epoch: 3
            })
        );
        // Another tenant or epoch with the same MAC does not verify.
        let tag = token.rsplit('.').next().unwrap();
        assert_eq!(credentials.verify(&format!("sbrt1.t-2.3.{tag}")), None);
        assert_eq!(credentials.verify(&format!("sbrt1.t-1.4.{tag}")), None);
        assert_eq!(credentials.verify("sbrt1.t-1.3"), None);
        assert_eq!(credentials.verify("internal-token"), None);
        // Another key issues other credentials.
        let other =
            RuntimeCredentials::new(Some("configured"), b"jwt secret of at least 32 bytes!!");
        assert_eq!(other.verify(&token), None);
        assert!(!format!("{credentials:?}").contains(tag));
    }
}
