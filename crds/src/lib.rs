//! The Switchboard Kubernetes API (`voice.switchboard.dev/v1alpha1`).
//!
//! * [`Tenant`] — cluster-scoped; one customer's isolated voice stack.
//! * [`PhoneNumber`] — namespaced; a number bought from (or imported into) a carrier.
//! * [`Campaign`] — namespaced; an outbound calling campaign.
//!
//! These types are the single source of truth for the CRD YAML under
//! `charts/switchboard/crds/` (see [`crd_yaml`]) and for what the operator, the gateway and
//! the runtime exchange. Besides the resources, the contracts between the binaries live here
//! once, used by every side:
//!
//! * [`events`] — runtime → gateway call events;
//! * [`internal_api`] — operator ↔ gateway internal API bodies and the error body;
//! * [`naming`] — a tenant's namespace and runtime endpoint from one prefix setting;
//! * [`schedule`] and [`CampaignSpec::validate`] — calling windows and campaign spec rules;
//! * [`plan`] — plans and a tenant's effective limits;
//! * [`call_bounds`] — bounds on call durations and times from carriers, PBXs and runtimes;
//! * [`idempotency`] — the `Idempotency-Key` header of creating `POST`s;
//! * [`outbound`] — the URL policy for requests to tenant-chosen URLs (no internal targets);
//! * [`agents`] — a tenant's named agents and which one answers a call;
//! * [`credentials`] — how stored provider credentials reach the runtime (Secret keys, index);
//! * [`recording`] — an agent's call recording, the WAV format and the runtime's upload;
//! * [`retention`] — how long each kind of a tenant's data is kept.

// `#[kube(printcolumn(type_ = "integer", ...))]` repeats arguments on purpose; clippy reads
// those derive arguments as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod agents;
pub mod call_bounds;
pub mod campaign;
pub mod conditions;
pub mod credentials;
pub mod events;
pub mod idempotency;
pub mod internal_api;
pub mod naming;
pub mod outbound;
pub mod phone_number;
pub mod plan;
pub mod recording;
pub mod retention;
pub mod schedule;
pub mod tenant;
pub mod turn_taking;

pub use campaign::{Campaign, CampaignPhase, CampaignSpec, CampaignStatus, SpecError};
pub use conditions::{ConditionStatus, set_condition};
pub use phone_number::{DeletionPolicy, PhoneNumber, PhoneNumberSpec, PhoneNumberStatus};
pub use plan::{LimitPatch, Plan, PlanLimits, PlanOverrides, effective_limits};
pub use tenant::{CarrierKind, Tenant, TenantSpec, TenantStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of every Switchboard resource.
pub const API_GROUP: &str = "voice.switchboard.dev";
/// The served and stored version.
pub const API_VERSION: &str = "v1alpha1";
/// Label put on every object Switchboard creates, naming the tenant it belongs to.
pub const TENANT_LABEL: &str = "voice.switchboard.dev/tenant";
/// Crossplane-style annotation holding the carrier's id of a bought or imported resource.
pub const EXTERNAL_NAME_ANNOTATION: &str = "voice.switchboard.dev/external-name";

/// All CustomResourceDefinitions, in a stable order.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![Tenant::crd(), PhoneNumber::crd(), Campaign::crd()]
}

/// Errors while rendering the CRDs.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The CRD could not be serialised to YAML.
    #[error("cannot serialise CRD to YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// One CRD as the YAML document committed under `charts/switchboard/files/crds/`.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, RenderError> {
    Ok(quote_sexagesimal(&serde_yaml::to_string(crd)?))
}

/// Quotes scalars such as `17:00`. serde_yaml writes YAML 1.2, where they are strings, but
/// Helm and kubectl read YAML 1.1, where an unquoted `17:00` is the base-60 integer 1020:
/// the calling window's string default would become a number and the CRD be rejected.
fn quote_sexagesimal(yaml: &str) -> String {
    yaml.split_inclusive('\n')
        .map(|line| {
            let (content, end) = match line.strip_suffix('\n') {
                Some(content) => (content, "\n"),
                None => (line, ""),
            };
            let scalar_at = content.rfind(": ").map(|i| i + 2).or_else(|| {
                let indent = content.len() - content.trim_start().len();
                content[indent..].starts_with("- ").then_some(indent + 2)
            });
            match scalar_at {
                Some(at) if is_sexagesimal(&content[at..]) => {
                    format!("{}'{}'{end}", &content[..at], &content[at..])
                }
                _ => line.to_owned(),
            }
        })
        .collect()
}

/// `digits(:digits)+` with at most two digits after each colon: a YAML 1.1 base-60 integer.
fn is_sexagesimal(scalar: &str) -> bool {
    let mut parts = scalar.split(':');
    let first = parts.next().unwrap_or_default();
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let rest: Vec<&str> = parts.collect();
    digits(first) && !rest.is_empty() && rest.iter().all(|p| p.len() <= 2 && digits(p))
}

/// The file name a CRD is stored under, e.g. `tenants.voice.switchboard.dev.yaml`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// All CRDs as one multi-document YAML stream (what `switchboard-operator crds` prints).
pub fn all_crds_yaml() -> Result<String, RenderError> {
    let mut out = String::new();
    for crd in all_crds() {
        out.push_str("---\n");
        out.push_str(&crd_yaml(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod yaml_tests {
    use super::quote_sexagesimal;

    #[test]
    fn times_are_quoted_for_yaml_1_1_readers() {
        let yaml = "default: 17:00\nlist:\n  - 09:00\ndescription: 'at 17:00'\npattern: ^([01][0-9]):[0-5][0-9]$\nport: 8080\n";
        assert_eq!(
            quote_sexagesimal(yaml),
            "default: '17:00'\nlist:\n  - '09:00'\ndescription: 'at 17:00'\npattern: ^([01][0-9]):[0-5][0-9]$\nport: 8080\n"
        );
    }
}
