//! Which carrier account owns a number, and with which secret: the one answer used to verify
//! its webhooks, place its campaign calls, answer, stream and transfer its calls.
//!
//! A routed number (`phone_numbers.account`) belongs to the platform's account (from
//! configuration: `TWILIO_ACCOUNT_SID`/`TWILIO_AUTH_TOKEN`, `TELNYX_API_KEY`/
//! `TELNYX_PUBLIC_KEY`/`TELNYX_CONNECTION_ID`) or to the tenant's own, stored as the tenant's
//! default `twilio`/`telnyx` credential (secret sealed with the master key). Sandbox numbers
//! sign the Twilio way with `SWITCHBOARD_SANDBOX_AUTH_TOKEN`.
//!
//! A tenant credential's metadata names the account's other parts in snake_case:
//! `account_sid` (Twilio), `connection_id` and `public_key` (Telnyx), as the credentials API
//! documents. Credentials stored with the camelCase spellings (`accountSid`, `connectionId`,
//! `publicKey`), which older clients sent, are still read.

use std::sync::Arc;

use switchboard_carriers::signatures::TelnyxPublicKey;
use switchboard_carriers::{TelnyxClient, TelnyxConfig, TwilioClient, TwilioConfig};

use crate::crypto::{CryptoError, Keyring, Sealed, credential_aad};
use crate::store::numbers::NumberRow;
use crate::store::{Scope, Store, StoreError, credentials};

/// Whether a credential's provider is a carrier (kept out of the runtime's `provider-keys`).
pub fn is_carrier(provider: &str) -> bool {
    matches!(provider, "twilio" | "telnyx")
}

/// Metadata key of a Twilio credential's account SID.
pub const TWILIO_ACCOUNT_SID: MetadataKey = MetadataKey("account_sid", "accountSid");
/// Metadata key of a Telnyx credential's Call Control connection id.
pub const TELNYX_CONNECTION_ID: MetadataKey = MetadataKey("connection_id", "connectionId");
/// Metadata key of a Telnyx credential's webhook public key (base64 Ed25519).
pub const TELNYX_PUBLIC_KEY: MetadataKey = MetadataKey("public_key", "publicKey");

/// A credential metadata key: the documented spelling and the older one still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataKey(pub &'static str, pub &'static str);

impl MetadataKey {
    /// The value under either spelling (the documented one first).
    pub fn read(self, metadata: &serde_json::Value) -> Option<String> {
        [self.0, self.1]
            .iter()
            .find_map(|k| metadata.get(*k).and_then(|v| v.as_str()))
            .map(str::to_owned)
    }
}

/// Why an account could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored secret cannot be opened with the master keys.
    #[error("cannot open the tenant's {vendor} credential: {source}")]
    Sealed {
        /// `twilio` or `telnyx`.
        vendor: &'static str,
        /// Why.
        source: CryptoError,
    },
    /// The stored secret is not text.
    #[error("the tenant's {0} credential is not UTF-8")]
    NotText(&'static str),
}

/// The platform's own carrier accounts and API bases (from configuration).
#[derive(Clone, Default)]
pub struct PlatformAccounts {
    /// `TWILIO_ACCOUNT_SID`.
    pub twilio_account_sid: Option<String>,
    /// `TWILIO_AUTH_TOKEN`.
    pub twilio_auth_token: Option<String>,
    /// `TWILIO_API_BASE`.
    pub twilio_api_base: String,
    /// `TELNYX_API_KEY`.
    pub telnyx_api_key: Option<String>,
    /// `TELNYX_PUBLIC_KEY`, decoded.
    pub telnyx_public_key: Option<TelnyxPublicKey>,
    /// `TELNYX_CONNECTION_ID`.
    pub telnyx_connection_id: Option<String>,
    /// `TELNYX_API_BASE`.
    pub telnyx_api_base: String,
    /// `SWITCHBOARD_SANDBOX_AUTH_TOKEN` (generated in dev mode when unset).
    pub sandbox_auth_token: Option<String>,
}

impl std::fmt::Debug for PlatformAccounts {
    // Tokens and keys never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformAccounts")
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("twilio_api_base", &self.twilio_api_base)
            .field("telnyx_connection_id", &self.telnyx_connection_id)
            .field("telnyx_api_base", &self.telnyx_api_base)
            .finish_non_exhaustive()
    }
}

/// A Twilio account: its SID (needed for REST calls, not for signatures) and auth token.
#[derive(Clone)]
pub struct TwilioAccount {
    /// Account SID, when known.
    pub account_sid: Option<String>,
    /// Auth token: signs webhooks, authenticates REST calls.
    pub auth_token: String,
}

/// A Telnyx account, as far as it is configured.
#[derive(Clone, Default)]
pub struct TelnyxAccount {
    /// API key (Call Control commands, outbound calls).
    pub api_key: Option<String>,
    /// Webhook signing key.
    pub public_key: Option<TelnyxPublicKey>,
    /// Call Control connection id (outbound calls).
    pub connection_id: Option<String>,
}

/// A tenant's stored carrier credential, opened.
struct StoredAccount {
    secret: String,
    metadata: serde_json::Value,
}

/// Answers "which account owns this number, with which secret". Cheap to clone.
#[derive(Clone)]
pub struct CarrierAccounts {
    platform: Arc<PlatformAccounts>,
    store: Store,
    keyring: Arc<Keyring>,
}

impl CarrierAccounts {
    /// Accounts of the platform (configuration) and of tenants (stored credentials).
    pub fn new(platform: PlatformAccounts, store: Store, keyring: Arc<Keyring>) -> Self {
        Self {
            platform: Arc::new(platform),
            store,
            keyring,
        }
    }

    /// The platform's accounts.
    pub fn platform(&self) -> &PlatformAccounts {
        &self.platform
    }

    /// The token that signs Twilio-style webhooks for `number`: the sandbox's for sandbox
    /// numbers, else the auth token of the Twilio account that owns it.
    pub async fn webhook_signing_token(
        &self,
        number: &NumberRow,
    ) -> Result<Option<String>, AccountError> {
        if number.carrier == "sandbox" {
            return Ok(self.platform.sandbox_auth_token.clone());
        }
        Ok(self.twilio(number).await?.map(|a| a.auth_token))
    }

    /// The Twilio account that owns `number`.
    pub async fn twilio(&self, number: &NumberRow) -> Result<Option<TwilioAccount>, AccountError> {
        if !owned_by_tenant(number) {
            return Ok(self
                .platform
                .twilio_auth_token
                .clone()
                .map(|auth_token| TwilioAccount {
                    account_sid: self.platform.twilio_account_sid.clone(),
                    auth_token,
                }));
        }
        Ok(self
            .tenant_account(&number.tenant_id, "twilio")
            .await?
            .map(|stored| TwilioAccount {
                account_sid: TWILIO_ACCOUNT_SID.read(&stored.metadata),
                auth_token: stored.secret,
            }))
    }

    /// The Telnyx account that owns `number`. A tenant's public key that does not decode is
    /// treated as missing (its webhooks are then refused).
    pub async fn telnyx(&self, number: &NumberRow) -> Result<TelnyxAccount, AccountError> {
        if !owned_by_tenant(number) {
            return Ok(TelnyxAccount {
                api_key: self.platform.telnyx_api_key.clone(),
                public_key: self.platform.telnyx_public_key.clone(),
                connection_id: self.platform.telnyx_connection_id.clone(),
            });
        }
        let Some(stored) = self.tenant_account(&number.tenant_id, "telnyx").await? else {
            return Ok(TelnyxAccount::default());
        };
        Ok(TelnyxAccount {
            public_key: TELNYX_PUBLIC_KEY
                .read(&stored.metadata)
                .and_then(|k| TelnyxPublicKey::from_base64(&k).ok()),
            connection_id: TELNYX_CONNECTION_ID.read(&stored.metadata),
            api_key: Some(stored.secret),
        })
    }

    /// A Twilio REST client for `account` (`None` without its SID).
    pub fn twilio_client(
        &self,
        account: &TwilioAccount,
    ) -> Result<Option<TwilioClient>, switchboard_carriers::CarrierError> {
        let Some(sid) = &account.account_sid else {
            return Ok(None);
        };
        let config = TwilioConfig::new(sid.clone(), account.auth_token.clone())
            .with_base_url(self.platform.twilio_api_base.clone());
        TwilioClient::new(config).map(Some)
    }

    /// A Telnyx REST client for `account` (`None` without its API key). Call Control
    /// commands need only the key; placing calls needs the connection id too.
    pub fn telnyx_client(
        &self,
        account: &TelnyxAccount,
    ) -> Result<Option<TelnyxClient>, switchboard_carriers::CarrierError> {
        let Some(key) = &account.api_key else {
            return Ok(None);
        };
        let config = TelnyxConfig::new(
            key.clone(),
            account.connection_id.clone().unwrap_or_default(),
        )
        .with_base_url(self.platform.telnyx_api_base.clone());
        TelnyxClient::new(config).map(Some)
    }

    /// The tenant's default credential for `vendor`, opened.
    async fn tenant_account(
        &self,
        tenant_id: &str,
        vendor: &'static str,
    ) -> Result<Option<StoredAccount>, AccountError> {
        let mut tx = self.store.read(&Scope::tenant(tenant_id)).await?;
        let rows = credentials::list(&mut tx, tenant_id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let Some(row) = rows
            .into_iter()
            .filter(|r| r.provider == vendor)
            .max_by_key(|r| r.is_default.0)
        else {
            return Ok(None);
        };
        let sealed = Sealed {
            key_id: row.key_id.clone(),
            ciphertext: row.ciphertext.clone(),
        };
        let secret = self
            .keyring
            .open(&sealed, &credential_aad(&row.tenant_id, &row.id))
            .map_err(|source| AccountError::Sealed { vendor, source })?;
        let secret = String::from_utf8(secret).map_err(|_| AccountError::NotText(vendor))?;
        let metadata = serde_json::from_str(&row.metadata).unwrap_or(serde_json::Value::Null);
        Ok(Some(StoredAccount { secret, metadata }))
    }
}

/// Whether the number belongs to the tenant's own carrier account (else the platform's).
fn owned_by_tenant(number: &NumberRow) -> bool {
    number.account == "tenant"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_metadata_spellings_are_read_the_documented_one_first() {
        let new = serde_json::json!({"account_sid": "AC1"});
        let old = serde_json::json!({"accountSid": "AC2"});
        let both = serde_json::json!({"accountSid": "AC2", "account_sid": "AC1"});
        assert_eq!(TWILIO_ACCOUNT_SID.read(&new).as_deref(), Some("AC1"));
        assert_eq!(TWILIO_ACCOUNT_SID.read(&old).as_deref(), Some("AC2"));
        assert_eq!(TWILIO_ACCOUNT_SID.read(&both).as_deref(), Some("AC1"));
        assert_eq!(TELNYX_PUBLIC_KEY.read(&serde_json::Value::Null), None);
    }
}
