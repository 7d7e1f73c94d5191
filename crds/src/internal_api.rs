//! The gateway's cluster-internal API (`/internal/v1`, bearer `SWITCHBOARD_INTERNAL_TOKEN`):
//! the wire types both sides use, declared once. The operator is the client (campaign
//! registration, progress, number routes); the gateway serves them. Runtime events, the other
//! caller of the internal API, are in [`crate::events`].
//!
//! | request | body | answer |
//! | --- | --- | --- |
//! | `PUT /internal/v1/tenants/{tenant}/campaigns/{name}` | [`Registration`] | [`RegistrationResult`] |
//! | `GET …/campaigns/{name}/progress` | — | [`Progress`] (404: unknown campaign) |
//! | `DELETE …/campaigns/{name}` | — | 204 (idempotent) |
//! | `PUT /internal/v1/numbers/{e164}` | [`NumberRoute`] | 204 |
//! | `DELETE /internal/v1/numbers/{e164}` | — | 204 |
//! | `POST /internal/v1/events` | [`crate::events::EventBatch`] | [`EventsReply`] |
//!
//! Every 4xx/5xx carries an [`ErrorBody`] (the public API's error shape too).
//!
//! With the `utoipa` feature the types the gateway's public API also answers with derive
//! `utoipa::ToSchema`, so its OpenAPI document describes them from this one declaration; the
//! operator builds without it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{CampaignPhase, CampaignSpec};

/// Body of `PUT /internal/v1/tenants/{tenant}/campaigns/{name}`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// Namespace of the Campaign (the tenant's namespace).
    pub namespace: String,
    /// The Campaign's uid: with `generation`, the idempotency key of the registration.
    pub uid: String,
    /// The Campaign's `metadata.generation`.
    pub generation: i64,
    /// The spec as applied (camelCase JSON, `suspend` included).
    pub spec: CampaignSpec,
    /// The caller ID in E.164, resolved from the PhoneNumber's status.
    pub from_number: String,
    /// Contact CSV from the ConfigMap/Secret (header row with `phone`, optional `id`, `name`;
    /// more columns become variables); `None` (sent as `null`) when contacts are uploaded to
    /// the gateway.
    pub contacts_csv: Option<String>,
}

impl fmt::Debug for Registration {
    /// Contacts are personal data: `Debug` shows their size, not their content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("namespace", &self.namespace)
            .field("uid", &self.uid)
            .field("generation", &self.generation)
            .field("spec", &self.spec)
            .field("from_number", &self.from_number)
            .field(
                "contacts_csv",
                &self
                    .contacts_csv
                    .as_ref()
                    .map(|c| format!("<{} bytes>", c.len())),
            )
            .finish()
    }
}

/// The gateway's answer to a registration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationResult {
    /// Whether the campaign is registered (always true on 200).
    #[serde(default)]
    pub registered: bool,
    /// Contacts known for the campaign.
    #[serde(default)]
    pub contacts: i64,
    /// Rows of the CSV the gateway refused, with why.
    #[serde(default)]
    pub rejected: Vec<RejectedRow>,
}

/// One refused contact row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct RejectedRow {
    /// 1-based data row of the CSV.
    pub row: usize,
    /// Why it was refused.
    pub error: String,
}

/// `GET …/progress`: where the dialer is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Lifecycle phase as the dialer sees it.
    pub phase: CampaignPhase,
    /// Contacts in the campaign.
    #[serde(default)]
    pub total: i64,
    /// Contacts not yet called or waiting for a retry.
    #[serde(default)]
    pub pending: i64,
    /// Calls under way.
    #[serde(default)]
    pub in_progress: i64,
    /// Contacts reached.
    #[serde(default)]
    pub completed: i64,
    /// Contacts that failed after every attempt.
    #[serde(default)]
    pub failed: i64,
    /// Contacts that never answered after every attempt.
    #[serde(default)]
    pub no_answer: i64,
    /// Why the dialer is not dialling right now (`Suspended`, `TenantSuspended`,
    /// `PlanLimitReached`, `OutsideWindow`, `FromNumberNotReady`, …); absent while it dials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body of `PUT /internal/v1/numbers/{e164}`: which tenant answers a number, and whose carrier
/// account verifies its webhooks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberRoute {
    /// Tenant name (slug) or the gateway's tenant id.
    pub tenant: String,
    /// `twilio`, `telnyx` or `sandbox`.
    pub carrier: String,
    /// `platform` (the default) or `tenant`: whose account owns the number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Agent that answers, when not the tenant's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// Result of `POST /internal/v1/events`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsReply {
    /// Events applied now.
    pub accepted: usize,
    /// Events seen before (ignored).
    pub duplicates: usize,
}

/// The error body of every gateway answer that is not a success:
/// `{"error": {"code", "message", "field"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    #[serde(default)]
    pub code: String,
    /// Human-readable explanation.
    #[serde(default)]
    pub message: String,
    /// The request field at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_serialises_as_the_contract_says() {
        let registration = Registration {
            namespace: "tenant-acme".into(),
            uid: "u-1".into(),
            generation: 3,
            spec: CampaignSpec::default(),
            from_number: "+15550100".into(),
            contacts_csv: Some("phone\n+15550101\n".into()),
        };
        let json = serde_json::to_value(&registration).unwrap();
        assert_eq!(json["fromNumber"], "+15550100");
        assert_eq!(json["generation"], 3);
        assert_eq!(json["spec"]["pacing"]["maxConcurrent"], 2);
        assert_eq!(json["contactsCsv"], "phone\n+15550101\n");
        let debug = format!("{registration:?}");
        assert!(!debug.contains("+15550101"), "contacts stay out of logs");
        assert!(debug.contains("<16 bytes>"), "{debug}");
        let uploaded = Registration {
            contacts_csv: None,
            ..registration
        };
        let json = serde_json::to_value(&uploaded).unwrap();
        assert!(json["contactsCsv"].is_null(), "null, not absent");
        assert!(json.as_object().unwrap().contains_key("contactsCsv"));
    }

    #[test]
    fn progress_phase_is_the_campaign_phase_on_the_wire() {
        let progress: Progress =
            serde_json::from_str(r#"{"phase":"Completed","total":3,"completed":3}"#).unwrap();
        assert_eq!(progress.phase, CampaignPhase::Completed);
        let json = serde_json::to_value(&progress).unwrap();
        assert_eq!(json["phase"], "Completed");
        assert!(json.get("reason").is_none(), "absent while dialling");
        assert!(serde_json::from_str::<Progress>(r#"{"phase":"Dialling"}"#).is_err());
    }

    #[test]
    fn number_routes_default_to_the_platform_account_and_refuse_unknown_fields() {
        let route: NumberRoute =
            serde_json::from_str(r#"{"tenant":"acme","carrier":"twilio"}"#).unwrap();
        assert_eq!(route.account, None);
        assert!(
            serde_json::from_str::<NumberRoute>(r#"{"tenant":"a","carrier":"b","x":1}"#).is_err()
        );
        let json = serde_json::to_value(NumberRoute {
            tenant: "acme".into(),
            carrier: "telnyx".into(),
            account: Some("tenant".into()),
            agent: None,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"tenant": "acme", "carrier": "telnyx", "account": "tenant"})
        );
    }

    #[test]
    fn error_bodies_read_with_or_without_a_field() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"error":{"code":"invalid_number","message":"m","field":"fromNumber"}}"#,
        )
        .unwrap();
        assert_eq!(body.error.field.as_deref(), Some("fromNumber"));
        let json = serde_json::to_value(ErrorBody {
            error: ErrorDetail {
                code: "not_found".into(),
                message: "campaign not found".into(),
                field: None,
            },
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "not_found", "message": "campaign not found"}})
        );
    }
}
