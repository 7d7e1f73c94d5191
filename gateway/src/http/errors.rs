//! The JSON error shape of the API, `{"error": {"code", "message", "field"}}`
//! (`switchboard_crds::internal_api::ErrorBody`, which the operator reads too), the JSON body
//! extractor that maps axum's rejections (malformed JSON, unknown or missing fields, wrong
//! content type, oversized body) to it, and the one mapping of the domain modules' errors to
//! HTTP answers.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
pub use switchboard_crds::internal_api::{ErrorBody, ErrorDetail};

use crate::billing::BillingError;
use crate::billing::stripe_events::StripeEventError;
use crate::calls::CallError;
use crate::calls::cdr::CdrError;
use crate::campaigns::CampaignError;
use crate::carrier_accounts::AccountError;
use crate::kube::KubeError;
use crate::store::StoreError;
use crate::usage::meter::MeterError;

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `email_taken`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// Names the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 422: a field's value is not acceptable.
    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).with_field(field)
    }

    /// 400: the request cannot be understood.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: missing or bad credentials.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403: authenticated but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: no such object (also answered for objects of other tenants).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409: conflicts with existing state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; slow down",
        );
        error.retry_after = Some(retry_after_secs);
        error
    }

    /// 503: a dependency is unavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500: logs the cause with an id and tells the client only the id.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        let id = uuid::Uuid::new_v4();
        tracing::error!(error_id = %id, error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error (id {id})"),
        )
    }
}

impl From<crate::lifecycle::LifecycleError> for ApiError {
    fn from(error: crate::lifecycle::LifecycleError) -> Self {
        use crate::lifecycle::LifecycleError as E;
        let message = error.to_string();
        match error {
            E::NotFound(what) => ApiError::not_found(what),
            E::SoleOwner(_) => ApiError::conflict("sole_owner", message),
            E::WrongPassword => ApiError::forbidden(message),
            E::ManagedByManifest(_) => ApiError::conflict("tenant_managed_by_manifest", message),
            E::PendingDeletion(_) => ApiError::conflict("tenant_pending_deletion", message),
            E::NotPendingDeletion(_) => ApiError::conflict("tenant_not_pending_deletion", message),
            E::Invalid { field, .. } => ApiError::invalid(&field, "invalid", message),
            E::Kube(error) => {
                let slug = match &error {
                    KubeError::OwnedElsewhere { name, .. } | KubeError::Foreign { name } => {
                        name.clone()
                    }
                    _ => String::new(),
                };
                tenant_write_error(error, &slug)
            }
            E::Carrier(_) => ApiError::unavailable(message),
            E::Store(error) => ApiError::internal(&error),
            E::Archive(_) | E::Crypto(_) => ApiError::internal(&message),
        }
    }
}

impl From<crate::recordings::RecordingError> for ApiError {
    fn from(error: crate::recordings::RecordingError) -> Self {
        use crate::recordings::RecordingError as E;
        let message = error.to_string();
        match error {
            E::NoStorage => ApiError::invalid("recording", "no_recording_storage", message),
            E::Invalid(_) => ApiError::invalid("body", "invalid_recording", message),
            E::Credential(_) => ApiError::invalid("credential", "unusable_s3_credential", message),
            E::Gone => ApiError::new(StatusCode::GONE, "recording_gone", message),
            // Never the store's raw error: it could name the tenant's endpoint; logged instead.
            E::Storage(_) => {
                tracing::warn!(error = %message, "recording storage failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "storage_failed",
                    "the recording storage failed; try again",
                )
            }
            E::Store(error) => ApiError::internal(&error),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::internal(&error)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::internal(&error)
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        ApiError::internal(&error)
    }
}

impl From<CallError> for ApiError {
    fn from(error: CallError) -> Self {
        match error {
            // 503: the carrier tries its fallback URL / the load balancer another replica.
            CallError::Draining => ApiError::unavailable(error.to_string()),
            other => ApiError::internal(&other),
        }
    }
}

impl From<CdrError> for ApiError {
    fn from(error: CdrError) -> Self {
        match error {
            CdrError::Unauthorized => {
                ApiError::unauthorized("invalid_credentials", "CDR credentials are invalid")
            }
            CdrError::Invalid {
                field,
                code,
                message,
            } => ApiError::invalid(field, code, message),
            CdrError::Store(error) => error.into(),
        }
    }
}

impl From<CampaignError> for ApiError {
    fn from(error: CampaignError) -> Self {
        match error {
            CampaignError::Invalid {
                field,
                code,
                message,
            } => ApiError::invalid(field, code, message),
            other => ApiError::internal(&other),
        }
    }
}

impl From<switchboard_crds::SpecError> for ApiError {
    fn from(error: switchboard_crds::SpecError) -> Self {
        ApiError::invalid(error.field, error.code, error.message)
    }
}

impl From<MeterError> for ApiError {
    fn from(error: MeterError) -> Self {
        match error {
            MeterError::OverLimit { retry_after_secs } => {
                let mut answer = ApiError::too_many_requests(retry_after_secs);
                answer.code = "usage_limit_reached";
                answer.message = error.to_string();
                answer
            }
            MeterError::Store(error) => error.into(),
        }
    }
}

impl From<BillingError> for ApiError {
    fn from(error: BillingError) -> Self {
        let message = error.to_string();
        match error {
            BillingError::NotConfigured | BillingError::Unreachable(_) => {
                ApiError::unavailable(message)
            }
            BillingError::UnknownPlan => ApiError::invalid("plan", "unknown_plan", message),
            BillingError::NoCustomer => ApiError::conflict("no_customer", message),
            BillingError::Refused(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "stripe_error", message)
            }
        }
    }
}

impl From<StripeEventError> for ApiError {
    fn from(error: StripeEventError) -> Self {
        let message = error.to_string();
        match error {
            StripeEventError::Signature(_) => ApiError::bad_request("invalid_signature", message),
            StripeEventError::NotJson => ApiError::bad_request("invalid_json", message),
            StripeEventError::NoId => ApiError::bad_request("invalid_event", message),
            StripeEventError::Store(error) => error.into(),
        }
    }
}

/// The [`ApiError::code`] of an error response, kept in the response's extensions so
/// middleware (the metrics of [`super::metrics`]) can tell failures apart without reading
/// the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = ErrorCode(self.code);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(code);
        response
    }
}

/// A JSON request body whose rejections answer in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => data_error(&text),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request("invalid_json", "request body is not valid JSON")
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "request body is too large",
        ),
        other if timed_out(&other) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "request body stalled (see SWITCHBOARD_BODY_READ_TIMEOUT_SECS)",
        ),
        other => ApiError::new(
            other.status(),
            "invalid_body",
            "request body cannot be read",
        ),
    }
}

/// Whether reading the body failed because it stalled past the body-read timeout
/// (`tower_http`'s `TimeoutBody`, layered in `http::app`).
fn timed_out(rejection: &JsonRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = source {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Turns serde's message into a field-naming error. serde names the field in backticks for
/// unknown and missing fields; `serde_path_to_error` (used by axum) prefixes the path.
fn data_error(text: &str) -> ApiError {
    let detail = text.split_once(": ").map_or(text, |(_, rest)| rest);
    if let Some(field) = backticked_after(detail, "unknown field `") {
        return ApiError::invalid(&field, "unknown_field", format!("unknown field `{field}`"));
    }
    if let Some(field) = backticked_after(detail, "missing field `") {
        return ApiError::invalid(&field, "missing_field", format!("missing field `{field}`"));
    }
    // "path.to.field: invalid type: …" → name the path.
    let (path, message) = detail.split_once(": ").unwrap_or((".", detail));
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    let error = ApiError::invalid(".", "invalid_field", message);
    if path == "." {
        error
    } else {
        error.with_field(path)
    }
}

fn backticked_after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    let end = rest.find('`')?;
    // serde_path_to_error prefixes the path, which for unknown fields already ends with the
    // field itself ("agent.llm.x: unknown field `x`"); missing fields get the parent's path.
    let prefix = text[..text.find(marker)?].trim_end_matches(": ").trim();
    let name = &rest[..end];
    Some(if prefix.is_empty() || prefix == "." {
        name.to_owned()
    } else if prefix == name || prefix.ends_with(&format!(".{name}")) {
        prefix.to_owned()
    } else {
        format!("{prefix}.{name}")
    })
}

/// The answer to a Tenant write the cluster side refused: 409 naming the field manager that
/// holds a field (change it in the manifest), 409 for a Tenant the gateway does not manage or
/// an API-server conflict, 503 otherwise.
pub fn tenant_write_error(error: KubeError, slug: &str) -> ApiError {
    match error {
        KubeError::OwnedElsewhere { field, manager, .. } => {
            let api_field = if field == "displayName" {
                "name"
            } else {
                field.as_str()
            };
            ApiError::conflict(
                "field_managed_elsewhere",
                format!(
                    "spec.{field} of Tenant {slug} is managed by {manager}; change it in the tenant's manifest"
                ),
            )
            .with_field(api_field)
        }
        KubeError::Foreign { name } => ApiError::conflict(
            "tenant_not_managed",
            format!("Tenant {name} in the cluster was not created by this gateway tenant"),
        ),
        KubeError::Api(kube::Error::Api(status)) if status.code == 409 => {
            ApiError::conflict("cluster_conflict", status.message)
        }
        error => {
            tracing::error!(%error, slug, "cannot apply the Tenant CR; update rolled back");
            ApiError::unavailable("the cluster refused the change; try again")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_become_field_errors() {
        let e = data_error(
            "Failed to deserialize the JSON body into the target type: unknown field `colour`, expected one of `email`, `password` at line 1 column 12",
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_field", Some("colour"))
        );
        let e = data_error(
            "Failed to deserialize the JSON body into the target type: colour: unknown field `colour`, expected `email` at line 1 column 12",
        );
        assert_eq!(e.field.as_deref(), Some("colour"));
        let e = data_error(
            "Failed to deserialize the JSON body into the target type: agent.llm.x: unknown field `x`, expected `model` at line 1 column 12",
        );
        assert_eq!(e.field.as_deref(), Some("agent.llm.x"));
        let e = data_error(
            "Failed to deserialize the JSON body into the target type: missing field `email` at line 1 column 2",
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("email"))
        );
        let e = data_error(
            "Failed to deserialize the JSON body into the target type: password: invalid type: integer `5`, expected a string at line 1 column 14",
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("password"))
        );
        assert_eq!(e.message, "invalid type: integer `5`, expected a string");
    }
}
