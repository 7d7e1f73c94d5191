//! Which carrier account a PhoneNumber uses: the tenant's own (a Secret in its namespace,
//! named by `Tenant.spec.carrier.credentialsSecretRef`) or the platform's (operator
//! settings), plus the shared sandbox carrier and the per-tenant purchase locks.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use switchboard_carriers::{
    AnyCarrier, CarrierError, SandboxCarrier, TelnyxClient, TelnyxConfig, TwilioClient,
    TwilioConfig, telnyx, twilio,
};
use switchboard_crds::CarrierKind;

/// Secret keys of a tenant's Twilio account (see `CarrierSpec` in the CRDs).
pub const TWILIO_ACCOUNT_SID_KEY: &str =
    switchboard_crds::tenant::carrier_secret_keys::TWILIO_ACCOUNT_SID;
/// Secret key of the Twilio auth token.
pub const TWILIO_AUTH_TOKEN_KEY: &str =
    switchboard_crds::tenant::carrier_secret_keys::TWILIO_AUTH_TOKEN;
/// Secret key of the Telnyx API key.
pub const TELNYX_API_KEY_KEY: &str = switchboard_crds::tenant::carrier_secret_keys::TELNYX_API_KEY;
/// Secret key of the Telnyx Call Control connection id.
pub const TELNYX_CONNECTION_ID_KEY: &str =
    switchboard_crds::tenant::carrier_secret_keys::TELNYX_CONNECTION_ID;

/// A Twilio account: SID and auth token.
#[derive(Clone, PartialEq, Eq)]
pub struct TwilioAccount {
    /// Account SID (`AC…`).
    pub account_sid: String,
    /// Auth token (secret).
    pub auth_token: String,
}

impl fmt::Debug for TwilioAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioAccount")
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

/// A Telnyx account: API key and the Call Control connection numbers are routed to.
#[derive(Clone, PartialEq, Eq)]
pub struct TelnyxAccount {
    /// API v2 key (secret).
    pub api_key: String,
    /// Call Control application (connection) id.
    pub connection_id: String,
}

impl fmt::Debug for TelnyxAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelnyxAccount")
            .field("connection_id", &self.connection_id)
            .finish_non_exhaustive()
    }
}

/// Why no carrier client could be built. Reported as `CredentialsMissing` / `BadCredentials`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The tenant names a Secret that does not exist in its namespace.
    #[error("carrier credentials Secret {0:?} not found in the tenant namespace")]
    SecretNotFound(String),
    /// The Secret lacks a key the carrier needs.
    #[error("carrier credentials Secret {secret:?} has no {key:?} key")]
    MissingKey {
        /// Secret name.
        secret: String,
        /// The missing key.
        key: &'static str,
    },
    /// The tenant uses the platform's account, but the platform has none for this carrier.
    #[error("the platform has no {0} account configured; set the tenant's credentialsSecretRef")]
    NoPlatformAccount(&'static str),
    /// The client could not be constructed.
    #[error("cannot build carrier client: {0}")]
    Client(#[from] CarrierError),
}

/// Carrier accounts and endpoints available to the operator.
pub struct Carriers {
    /// The platform's Twilio account (env `TWILIO_ACCOUNT_SID` / `TWILIO_AUTH_TOKEN`).
    pub platform_twilio: Option<TwilioAccount>,
    /// The platform's Telnyx account (env `TELNYX_API_KEY` / `TELNYX_CONNECTION_ID`).
    pub platform_telnyx: Option<TelnyxAccount>,
    /// Twilio API base (tests point it at a local server).
    pub twilio_base_url: String,
    /// Telnyx API base (tests point it at a local server).
    pub telnyx_base_url: String,
    /// Per-request timeout of carrier calls.
    pub timeout: Duration,
    /// The sandbox carrier account shared by every tenant choosing `sandbox`.
    pub sandbox: SandboxCarrier,
    /// Serialises purchases per tenant namespace.
    pub purchase_locks: PurchaseLocks,
}

/// One lock per tenant namespace around "check the limit, mark pending", so two numbers
/// reconciled at once cannot both take the plan's last slot.
#[derive(Debug, Default)]
pub struct PurchaseLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl PurchaseLocks {
    /// The lock of a tenant namespace.
    pub fn for_namespace(&self, namespace: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(namespace.to_owned()).or_default().clone()
    }
}

impl fmt::Debug for Carriers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Carriers")
            .field("platform_twilio", &self.platform_twilio)
            .field("platform_telnyx", &self.platform_telnyx)
            .field("twilio_base_url", &self.twilio_base_url)
            .field("telnyx_base_url", &self.telnyx_base_url)
            .finish_non_exhaustive()
    }
}

impl Default for Carriers {
    fn default() -> Self {
        Self {
            platform_twilio: None,
            platform_telnyx: None,
            twilio_base_url: twilio::DEFAULT_BASE_URL.to_owned(),
            telnyx_base_url: telnyx::DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(20),
            sandbox: SandboxCarrier::in_memory(),
            purchase_locks: PurchaseLocks::default(),
        }
    }
}

impl Carriers {
    /// The carrier client for `kind`, using the tenant's Secret when it names one.
    ///
    /// `secret` is `Some((name, Some(secret)))` when the tenant names a Secret that exists,
    /// `Some((name, None))` when it names a missing one, `None` for the platform's account.
    pub fn client(
        &self,
        kind: CarrierKind,
        secret: Option<(&str, Option<&Secret>)>,
    ) -> Result<AnyCarrier, CredentialsError> {
        match kind {
            // The sandbox needs no credentials: every tenant shares the one local account.
            CarrierKind::Sandbox => Ok(AnyCarrier::Sandbox(self.sandbox.clone())),
            CarrierKind::Twilio => {
                let account = match secret {
                    Some((name, found)) => twilio_from_secret(name, found)?,
                    None => self
                        .platform_twilio
                        .clone()
                        .ok_or(CredentialsError::NoPlatformAccount("Twilio"))?,
                };
                let config = TwilioConfig::new(account.account_sid, account.auth_token)
                    .with_base_url(&self.twilio_base_url)
                    .with_timeout(self.timeout);
                Ok(AnyCarrier::Twilio(TwilioClient::new(config)?))
            }
            CarrierKind::Telnyx => {
                let account = match secret {
                    Some((name, found)) => telnyx_from_secret(name, found)?,
                    None => self
                        .platform_telnyx
                        .clone()
                        .ok_or(CredentialsError::NoPlatformAccount("Telnyx"))?,
                };
                let config = TelnyxConfig::new(account.api_key, account.connection_id)
                    .with_base_url(&self.telnyx_base_url)
                    .with_timeout(self.timeout);
                Ok(AnyCarrier::Telnyx(TelnyxClient::new(config)?))
            }
        }
    }
}

/// The value of `key` in a Secret (`data`, or `stringData` as some fakes and tools leave it).
fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    let from_data = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok());
    from_data
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|data: &BTreeMap<String, String>| data.get(key).cloned())
        })
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

fn required(name: &str, secret: &Secret, key: &'static str) -> Result<String, CredentialsError> {
    secret_value(secret, key).ok_or_else(|| CredentialsError::MissingKey {
        secret: name.to_owned(),
        key,
    })
}

fn twilio_from_secret(
    name: &str,
    secret: Option<&Secret>,
) -> Result<TwilioAccount, CredentialsError> {
    let secret = secret.ok_or_else(|| CredentialsError::SecretNotFound(name.to_owned()))?;
    Ok(TwilioAccount {
        account_sid: required(name, secret, TWILIO_ACCOUNT_SID_KEY)?,
        auth_token: required(name, secret, TWILIO_AUTH_TOKEN_KEY)?,
    })
}

fn telnyx_from_secret(
    name: &str,
    secret: Option<&Secret>,
) -> Result<TelnyxAccount, CredentialsError> {
    let secret = secret.ok_or_else(|| CredentialsError::SecretNotFound(name.to_owned()))?;
    Ok(TelnyxAccount {
        api_key: required(name, secret, TELNYX_API_KEY_KEY)?,
        connection_id: required(name, secret, TELNYX_CONNECTION_ID_KEY)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use switchboard_carriers::Carrier as _;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn tenant_secrets_and_platform_accounts_pick_the_client() {
        let carriers = Carriers::default();
        let tw = secret(&[("accountSid", "AC1"), ("authToken", "t")]);
        let client = carriers
            .client(CarrierKind::Twilio, Some(("creds", Some(&tw))))
            .unwrap();
        assert_eq!(client.kind(), CarrierKind::Twilio);
        assert_eq!(
            carriers
                .client(CarrierKind::Twilio, Some(("creds", None)))
                .unwrap_err(),
            CredentialsError::SecretNotFound("creds".into())
        );
        let partial = secret(&[("accountSid", "AC1")]);
        assert_eq!(
            carriers
                .client(CarrierKind::Twilio, Some(("creds", Some(&partial))))
                .unwrap_err(),
            CredentialsError::MissingKey {
                secret: "creds".into(),
                key: "authToken"
            }
        );
        assert_eq!(
            carriers.client(CarrierKind::Telnyx, None).unwrap_err(),
            CredentialsError::NoPlatformAccount("Telnyx")
        );
        let sandbox = carriers.client(CarrierKind::Sandbox, None).unwrap();
        assert_eq!(sandbox.kind(), CarrierKind::Sandbox);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let account = TwilioAccount {
            account_sid: "AC1".into(),
            auth_token: "very-secret".into(),
        };
        assert!(!format!("{account:?}").contains("very-secret"));
        let account = TelnyxAccount {
            api_key: "KEYsecret".into(),
            connection_id: "c".into(),
        };
        assert!(!format!("{account:?}").contains("KEYsecret"));
    }
}
