//! Which carrier account a tenant's numbers use in Kubernetes mode, as the Tenant's
//! `spec.carrier` says it to the operator.
//!
//! A self-service tenant starts on the platform's carrier
//! ([`crate::voice_config::VoiceConfig::platform_carrier`]: the platform's Twilio or Telnyx
//! account from the chart's `secrets.carriers`; the sandbox only where configured). When the
//! tenant stores its own Twilio or Telnyx account through the credentials API (the default
//! `twilio` credential, else the default `telnyx` one), the gateway writes it into the Secret
//! [`CARRIER_SECRET_NAME`] in the tenant's namespace (keys
//! `switchboard_crds::tenant::carrier_secret_keys`) and points `spec.carrier` at it, so the
//! operator buys, configures and releases the tenant's PhoneNumbers with that account. Removing
//! the credential returns the tenant to the platform's carrier. The Secret is written with the
//! provider keys ([`crate::provider_keys::converge`]), so it is retried the same way; carrier
//! secrets never go into `provider-keys`, which the runtime reads.
//!
//! A manifest that sets `spec.carrier` keeps it: the gateway only logs that it holds the field.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use switchboard_crds::CarrierKind;
use switchboard_crds::tenant::carrier_secret_keys as keys;

use crate::carrier_accounts::{TELNYX_CONNECTION_ID, TELNYX_PUBLIC_KEY, TWILIO_ACCOUNT_SID};
use crate::kube::{KubeError, tenant_secret};
use crate::state::AppState;
use crate::store::credentials::{self, CredentialRow};
use crate::store::tenants::{self, TenantRow};
use crate::store::{Scope, StoreError, now_ms};

/// Name of the Secret holding a tenant's own carrier account, in the tenant's namespace.
pub const CARRIER_SECRET_NAME: &str = "carrier-credentials";

/// The tenant's own carrier account among its credentials: the default `twilio` credential,
/// else the default `telnyx` one.
pub fn own_account(rows: &[CredentialRow]) -> Option<(CarrierKind, &CredentialRow)> {
    let default_of = |provider: &str| {
        rows.iter()
            .find(|r| r.provider == provider && r.is_default.0)
    };
    default_of("twilio")
        .map(|row| (CarrierKind::Twilio, row))
        .or_else(|| default_of("telnyx").map(|row| (CarrierKind::Telnyx, row)))
}

/// The `spec.carrier` a tenant should have (JSON), given its own account (if any), the
/// platform's carrier and what it has now. Without an own account a tenant that had one goes
/// back to the platform's carrier; any other keeps what it has.
pub fn desired_carrier(own: Option<CarrierKind>, platform: CarrierKind, current: &str) -> Value {
    if let Some(kind) = own {
        return json!({"kind": kind.as_str(), "credentialsSecretRef": CARRIER_SECRET_NAME});
    }
    let current: Value = serde_json::from_str(current).unwrap_or_else(|_| json!({}));
    if current["credentialsSecretRef"] == CARRIER_SECRET_NAME {
        json!({"kind": platform.as_str()})
    } else {
        current
    }
}

/// The `carrier-credentials` Secret of a tenant from its credentials and their decrypted
/// secrets (empty when it has no own account, so a removed account leaves nothing behind).
pub fn desired_carrier_secret(
    namespace: &str,
    tenant: &TenantRow,
    credentials: &[(CredentialRow, Vec<u8>)],
) -> Secret {
    let rows: Vec<CredentialRow> = credentials.iter().map(|(row, _)| row.clone()).collect();
    let mut data = BTreeMap::new();
    if let Some((kind, row)) = own_account(&rows) {
        let secret = credentials
            .iter()
            .find(|(r, _)| r.id == row.id)
            .map(|(_, secret)| secret.clone())
            .unwrap_or_default();
        let metadata: Value = serde_json::from_str(&row.metadata).unwrap_or_else(|_| json!({}));
        let mut put = |key: &str, value: Option<Vec<u8>>| {
            if let Some(value) = value {
                data.insert(key.to_owned(), ByteString(value));
            }
        };
        match kind {
            CarrierKind::Twilio => {
                put(
                    keys::TWILIO_ACCOUNT_SID,
                    TWILIO_ACCOUNT_SID.read(&metadata).map(String::into_bytes),
                );
                put(keys::TWILIO_AUTH_TOKEN, Some(secret));
            }
            CarrierKind::Telnyx => {
                put(keys::TELNYX_API_KEY, Some(secret));
                put(
                    keys::TELNYX_CONNECTION_ID,
                    TELNYX_CONNECTION_ID.read(&metadata).map(String::into_bytes),
                );
                put(
                    keys::TELNYX_PUBLIC_KEY,
                    TELNYX_PUBLIC_KEY.read(&metadata).map(String::into_bytes),
                );
            }
            CarrierKind::Sandbox => {}
        }
    }
    tenant_secret(CARRIER_SECRET_NAME, namespace, tenant, data)
}

/// Why the tenant's `spec.carrier` could not be updated (logged).
#[derive(Debug, thiserror::Error)]
pub enum CarrierSpecError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cluster refused (or another manager holds `spec.carrier`).
    #[error(transparent)]
    Kube(#[from] KubeError),
}

impl From<sqlx::Error> for CarrierSpecError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::from(error))
    }
}

/// Brings the tenant's `spec.carrier` in line with its credentials after a credential change
/// (Kubernetes mode): the Tenant first, then the row. A tenant without a Tenant yet (owner not
/// verified) gets the row only; the Tenant is created with it.
pub async fn sync_spec(state: &AppState, tenant_id: &str) -> Result<(), CarrierSpecError> {
    if !state.kube.enabled() {
        return Ok(());
    }
    let scope = Scope::tenant(tenant_id);
    let mut tx = state.store.read(&scope).await?;
    let tenant = tenants::by_id(&mut tx, tenant_id).await?;
    let rows = credentials::list(&mut tx, tenant_id).await?;
    tx.commit().await?;
    let Some(mut tenant) = tenant else {
        return Ok(());
    };
    let own = own_account(&rows).map(|(kind, _)| kind);
    let desired = desired_carrier(own, state.config.voice.platform_carrier(), &tenant.carrier);
    let current: Value = serde_json::from_str(&tenant.carrier).unwrap_or_else(|_| json!({}));
    if desired == current {
        return Ok(());
    }
    tenant.carrier = desired.to_string();
    state.kube.apply_tenant(&tenant, &["carrier"]).await?;
    let mut tx = state.store.write(&scope).await?;
    tenants::mirror(&mut tx, &tenant, now_ms()).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Flag;

    fn cred(provider: &str, default: bool, metadata: Value) -> CredentialRow {
        CredentialRow {
            id: format!("{provider}-{default}"),
            tenant_id: "t".into(),
            provider: provider.into(),
            label: "main".into(),
            is_default: Flag(default),
            key_id: "k".into(),
            ciphertext: String::new(),
            hint: String::new(),
            metadata: metadata.to_string(),
            created_by: "u".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_stored_carrier_account_becomes_the_tenants_carrier_secret() {
        let tenant = TenantRow {
            id: "t".into(),
            slug: "acme".into(),
            name: "Acme".into(),
            plan: "free".into(),
            suspended: Flag(false),
            agent: "{}".into(),
            agents: "{}".into(),
            created_at: 0,
            updated_at: 0,
            origin: "signup".into(),
            cr_uid: None,
            activated_at: Some(0),
            detached_at: None,
            limits: "{}".into(),
            carrier: r#"{"kind":"telnyx"}"#.into(),
        };
        let credentials = vec![
            (cred("openai", true, json!({})), b"sk-1".to_vec()),
            (
                cred("twilio", false, json!({"account_sid": "ACold"})),
                b"old".to_vec(),
            ),
            (
                cred("twilio", true, json!({"account_sid": "AC123"})),
                b"tw-token".to_vec(),
            ),
        ];
        let secret = desired_carrier_secret("tenant-acme", &tenant, &credentials);
        assert_eq!(secret.metadata.name.as_deref(), Some(CARRIER_SECRET_NAME));
        let data = secret.data.unwrap();
        assert_eq!(data.len(), 2, "{data:?}");
        assert_eq!(data["accountSid"].0, b"AC123");
        assert_eq!(data["authToken"].0, b"tw-token");

        let telnyx = vec![(
            cred(
                "telnyx",
                true,
                json!({"connection_id": "c-1", "public_key": "pk"}),
            ),
            b"KEY".to_vec(),
        )];
        let data = desired_carrier_secret("tenant-acme", &tenant, &telnyx)
            .data
            .unwrap();
        assert_eq!(data["apiKey"].0, b"KEY");
        assert_eq!(data["connectionId"].0, b"c-1");
        assert_eq!(data["publicKey"].0, b"pk");
        assert!(
            desired_carrier_secret("tenant-acme", &tenant, &[])
                .data
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_spec_names_the_own_account_and_falls_back_to_the_platforms() {
        let own = desired_carrier(
            Some(CarrierKind::Telnyx),
            CarrierKind::Twilio,
            r#"{"kind":"twilio"}"#,
        );
        assert_eq!(
            own,
            json!({"kind": "telnyx", "credentialsSecretRef": "carrier-credentials"})
        );
        let back = desired_carrier(None, CarrierKind::Twilio, &own.to_string());
        assert_eq!(back, json!({"kind": "twilio"}));
        // A tenant that never had its own account keeps what it has (e.g. sandbox from before).
        assert_eq!(desired_carrier(None, CarrierKind::Twilio, "{}"), json!({}));
        assert!(
            crate::carrier_accounts::is_carrier("telnyx")
                && !crate::carrier_accounts::is_carrier("openai")
        );
    }
}
