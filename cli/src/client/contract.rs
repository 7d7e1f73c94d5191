//! What the client expects of each operation, for the contract test that holds it against the
//! gateway's OpenAPI document (`cli/tests/api.rs`): the operation exists, answers the status
//! the client reads, and every field name the client reads (writes) is in that answer's
//! (request's) schema.

use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard_crds::internal_api::Progress;

use super::shape::{self, Shape, TraceError};
use super::types::*;
use super::*;

/// A shape-tracing function.
pub type Tracer = fn() -> Result<Shape, TraceError>;

/// One operation as the client uses it.
pub struct Operation {
    /// Verb and path.
    pub endpoint: &'static Endpoint,
    /// The success status whose body the client reads.
    pub status: u16,
    /// The request body's fields (JSON bodies).
    pub request: Option<Tracer>,
    /// The response body's fields.
    pub response: Option<Tracer>,
}

fn traced<T: DeserializeOwned>() -> Result<Shape, TraceError> {
    shape::of::<T>()
}

macro_rules! op {
    ($endpoint:ident, $status:literal) => {
        Operation {
            endpoint: &$endpoint,
            status: $status,
            request: None,
            response: None,
        }
    };
    ($endpoint:ident, $status:literal, -> $response:ty) => {
        Operation {
            endpoint: &$endpoint,
            status: $status,
            request: None,
            response: Some(traced::<$response>),
        }
    };
    ($endpoint:ident, $status:literal, $request:ty => $response:ty) => {
        Operation {
            endpoint: &$endpoint,
            status: $status,
            request: Some(traced::<$request>),
            response: Some(traced::<$response>),
        }
    };
}

/// Every operation of [`Client`] and the account commands. Agents and campaign specs are
/// `switchboard-crds` types on both sides (their schemas in the document are free-form
/// objects), so for them only the operation and status are checked.
pub const OPERATIONS: &[Operation] = &[
    op!(SIGNUP, 201, SignupRequest => SignupResponse),
    op!(LOGIN, 200, LoginRequest => LoginResponse),
    op!(REFRESH, 200, RefreshRequest => RefreshResponse),
    op!(LOGOUT, 204),
    op!(ME, 200, -> Me),
    op!(TENANTS, 200, -> Page<Membership>),
    op!(AGENTS, 200),
    op!(AGENT, 200),
    op!(CREATE_AGENT, 201),
    op!(UPDATE_AGENT, 200),
    op!(DELETE_AGENT, 204),
    op!(CREDENTIALS, 200, -> Page<Credential>),
    op!(CREATE_CREDENTIAL, 201, NewCredential => Credential),
    op!(UPDATE_CREDENTIAL, 200, CredentialPatch => Credential),
    op!(TEST_CREDENTIAL, 200, -> CheckResult),
    op!(DELETE_CREDENTIAL, 204),
    op!(NUMBERS, 200, -> Page<Number>),
    op!(BUY_NUMBER, 201, BuyNumber => Number),
    op!(RELEASE_NUMBER, 204),
    op!(CAMPAIGNS, 200, -> Page<CampaignSummary>),
    op!(CAMPAIGN, 200, -> Progress),
    op!(PUT_CAMPAIGN, 201, -> Progress),
    op!(DELETE_CAMPAIGN, 204),
    op!(UPLOAD_CONTACTS, 200, -> UploadResult),
    op!(CAMPAIGN_RESULTS_CSV, 200),
    op!(API_KEYS, 200, -> Page<ApiKey>),
    op!(CREATE_API_KEY, 201, NewApiKey => CreatedApiKey),
    op!(REVOKE_API_KEY, 204),
    op!(MEMBERS, 200, -> Page<Member>),
    op!(CHANGE_ROLE, 200, RoleChange => Member),
    op!(REMOVE_MEMBER, 204),
    op!(INVITATIONS, 200, -> Page<Invitation>),
    op!(INVITE, 201, NewInvitation => Invitation),
    op!(REVOKE_INVITATION, 204),
    op!(CALLS, 200, -> Page<Call>),
    op!(CALL, 200, -> Call),
    op!(TRANSCRIPT, 200, -> Page<Turn>),
    op!(USAGE, 200, -> UsageReply),
    op!(WEBHOOKS, 200, -> Page<WebhookEndpoint>),
    op!(CREATE_WEBHOOK, 201, NewEndpoint => WebhookEndpoint),
    op!(UPDATE_WEBHOOK, 200, EndpointPatch => WebhookEndpoint),
    op!(ROTATE_WEBHOOK_SECRET, 200, RotateSecret => WebhookEndpoint),
    op!(TEST_WEBHOOK, 202, -> QueuedMessage),
    op!(WEBHOOK_DELIVERIES, 200, -> Page<Delivery>),
    op!(RESEND_DELIVERY, 202, -> QueuedMessage),
    op!(DELETE_WEBHOOK, 204),
    op!(CHECKOUT, 200, CheckoutRequest => BillingSession),
    op!(PORTAL, 200, PortalRequest => BillingSession),
    op!(BILLING_STATUS, 200, -> BillingStatus),
];

/// Where a traced shape and a schema of the document disagree.
pub fn check(
    shape: &Shape,
    schema: &Value,
    document: &Value,
    at: &str,
    problems: &mut Vec<String>,
) {
    let schema = resolve(schema, document);
    match shape {
        Shape::Scalar | Shape::Map => {}
        Shape::Seq(item) => match find(schema, document, "items") {
            Some(items) => check(item, items, document, &format!("{at}[]"), problems),
            None => problems.push(format!(
                "{at}: the client reads a list, the schema has none"
            )),
        },
        Shape::Struct(fields) => {
            let properties = properties(schema, document);
            if properties.is_empty() {
                problems.push(format!(
                    "{at}: the client reads fields, the schema names none"
                ));
                return;
            }
            for (name, inner) in fields {
                match properties.iter().find(|(p, _)| p == name) {
                    Some((_, property)) => {
                        check(inner, property, document, &format!("{at}.{name}"), problems)
                    }
                    None => problems.push(format!("{at}.{name}: not in the schema")),
                }
            }
        }
    }
}

/// Follows `$ref`s to `#/components/schemas/…`.
pub fn resolve<'a>(schema: &'a Value, document: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..16 {
        match current.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.trim_start_matches('#');
                match document.pointer(pointer) {
                    Some(target) => current = target,
                    None => return current,
                }
            }
            None => return current,
        }
    }
    current
}

/// `key` of the schema or of one of its `allOf`/`oneOf`/`anyOf` parts (`Option<T>` is
/// `oneOf [null, T]` in OpenAPI 3.1).
fn find<'a>(schema: &'a Value, document: &'a Value, key: &str) -> Option<&'a Value> {
    let schema = resolve(schema, document);
    if let Some(found) = schema.get(key) {
        return Some(found);
    }
    ["allOf", "oneOf", "anyOf"]
        .iter()
        .filter_map(|k| schema.get(*k).and_then(Value::as_array))
        .flatten()
        .find_map(|part| find(part, document, key))
}

/// Every property of the schema and of its composed parts.
fn properties<'a>(schema: &'a Value, document: &'a Value) -> Vec<(String, &'a Value)> {
    let schema = resolve(schema, document);
    let mut out: Vec<(String, &Value)> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default();
    for key in ["allOf", "oneOf", "anyOf"] {
        for part in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(properties(part, document));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Row {
        e164: Option<String>,
        phone_number: String,
    }

    #[test]
    fn a_field_the_schema_lacks_is_reported_through_refs_lists_and_nullable_parts() {
        let document = json!({"components": {"schemas": {
            "Row": {"type": "object", "properties": {"e164": {"type": ["string", "null"]}, "status": {"type": "string"}}},
            "Page": {"type": "object", "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}},
                "nextCursor": {"oneOf": [{"type": "null"}, {"type": "string"}]}}}
        }}});
        let schema = json!({"$ref": "#/components/schemas/Page"});
        let mut problems = Vec::new();
        let shape = shape::of::<Page<Row>>().unwrap();
        check(&shape, &schema, &document, "op", &mut problems);
        assert_eq!(problems, ["op.items[].phoneNumber: not in the schema"]);
    }

    #[test]
    fn every_operation_traces() {
        for operation in OPERATIONS {
            for trace in [operation.request, operation.response]
                .into_iter()
                .flatten()
            {
                assert!(trace().is_ok(), "{}", operation.endpoint.path);
            }
        }
    }
}
