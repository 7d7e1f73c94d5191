//! `Idempotency-Key` on the API's tenant-scoped `POST`s (the rules are `crate::idempotency`'s).
//!
//! One middleware ([`guard`]) in front of every route: it acts only on a `POST` that carries
//! the header and whose path names a tenant (`/api/v1/tenants/{tenant}/…`: buying numbers,
//! creating API keys, provider keys, webhooks, invitations, checkout sessions, contacts
//! uploads, do-not-call entries, test events, …). Other requests pass untouched; on
//! `POST`s outside a tenant (sign-up, login) the header is ignored. Campaigns are created
//! with `PUT` by name, which is idempotent by itself.
//!
//! The caller is authenticated here (401/404 as the handler would answer), the key claimed
//! in the tenant's scope, and then either the handler runs (and a 2xx answer is stored,
//! sealed), or the stored answer is replayed with `Idempotent-Replayed: true`, or the request
//! is refused: 422 `idempotency_key_reused` (same key, different request) or 409
//! `idempotency_key_in_progress` (the first request is still running).

use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchboard_crds::idempotency::{KEY_HEADER, REPLAYED_HEADER, validate_key};

use super::campaigns::CONTACTS_UPLOAD_LIMIT;
use super::errors::ApiError;
use super::principal::TenantAccess;
use crate::crypto::Sealed;
use crate::idempotency::{Idempotency, LEASE_MS, RETENTION_MS, STORED_BODY_MAX, remembers};
use crate::state::AppState;
use crate::store::idempotency::{self as rows, Claim, StoredAnswer};
use crate::store::{Scope, Store, now_ms};

/// The middleware; see the module documentation.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.headers().contains_key(KEY_HEADER) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let names_tenant = RawPathParams::from_request_parts(&mut parts, &state)
        .await
        .is_ok_and(|params| params.iter().any(|(name, _)| name == "tenant"));
    if !names_tenant {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let key = match parts.headers.get(KEY_HEADER).map(HeaderValue::to_str) {
        Some(Ok(key)) => key.to_owned(),
        _ => return invalid_key("the Idempotency-Key header is not visible ASCII").into_response(),
    };
    if let Err(error) = validate_key(&key) {
        return invalid_key(&error.to_string()).into_response();
    }
    let access = match TenantAccess::from_request_parts(&mut parts, &state).await {
        Ok(access) => access,
        Err(error) => return error.into_response(),
    };
    let limit = state.config.body_limit_bytes.max(CONTACTS_UPLOAD_LIMIT);
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
        .into_response();
    };
    let (kind, id) = access.principal.actor();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |p| p.as_str())
        .to_owned();
    let idempotency = Idempotency::new(
        &access.tenant.id,
        format!("{kind}:{id}"),
        &key,
        parts.method.as_str(),
        &path,
        &bytes,
    );
    let scope = access.scope();
    let claim = match claim(&state.store, &scope, &idempotency, &path).await {
        Ok(claim) => claim,
        Err(error) => return error.into_response(),
    };
    match claim {
        Claim::Fresh => {}
        Claim::Replay(answer) => return replay(&state, &idempotency, answer),
        Claim::Mismatch => {
            return ApiError::invalid(
                KEY_HEADER,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request (method, path or body) in the last 24 hours; use a new key",
            )
            .into_response();
        }
        Claim::InProgress => {
            let mut error = ApiError::conflict(
                "idempotency_key_in_progress",
                "a request with this Idempotency-Key is still running; retry shortly",
            )
            .with_field(KEY_HEADER);
            error.retry_after = Some(1);
            return error.into_response();
        }
    }
    // The handler reuses the caller's access and finds the key (numbers name objects after it).
    parts.extensions.insert(access);
    parts.extensions.insert(idempotency.clone());
    let mut held = Held {
        store: state.store.clone(),
        scope: scope.clone(),
        idempotency: Some(idempotency.clone()),
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (response_parts, body) = response.into_parts();
    if !remembers(response_parts.status.as_u16()) {
        held.release_now().await;
        return Response::from_parts(response_parts, body);
    }
    let Ok(body) = axum::body::to_bytes(body, STORED_BODY_MAX).await else {
        held.release_now().await;
        return ApiError::internal(&"an answer too large to remember").into_response();
    };
    let content_type = response_parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Err(error) = store_answer(
        &state,
        &scope,
        &idempotency,
        response_parts.status,
        content_type,
        &body,
    )
    .await
    {
        // The effect happened; the key stays held until its lease ends, so a retry meanwhile
        // is refused rather than run twice.
        tracing::error!(error = %error.message, "cannot store an idempotent answer");
    }
    // Stored (or held until the lease ends): nothing to release.
    held.idempotency = None;
    Response::from_parts(response_parts, Body::from(body))
}

fn invalid_key(message: &str) -> ApiError {
    ApiError::bad_request("invalid_idempotency_key", message.to_owned()).with_field(KEY_HEADER)
}

async fn claim(
    store: &Store,
    scope: &Scope,
    idempotency: &Idempotency,
    path: &str,
) -> Result<Claim, ApiError> {
    let now = now_ms();
    let mut tx = store.write(scope).await?;
    let claim = rows::claim(
        &mut tx,
        &idempotency.key,
        &idempotency.request_hash,
        path,
        now,
        now + LEASE_MS,
        now + RETENTION_MS,
    )
    .await?;
    tx.commit().await?;
    Ok(claim)
}

async fn store_answer(
    state: &AppState,
    scope: &Scope,
    idempotency: &Idempotency,
    status: StatusCode,
    content_type: Option<String>,
    body: &[u8],
) -> Result<(), ApiError> {
    let sealed = state
        .keyring
        .seal(body, &idempotency.aad())
        .map_err(|e| ApiError::internal(&e))?;
    let answer = StoredAnswer {
        status: i32::from(status.as_u16()),
        content_type,
        key_id: sealed.key_id,
        ciphertext: sealed.ciphertext,
    };
    let mut tx = state.store.write(scope).await?;
    rows::complete(
        &mut tx,
        &idempotency.key,
        &idempotency.request_hash,
        &answer,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The stored answer again, marked as a replay.
fn replay(state: &AppState, idempotency: &Idempotency, answer: StoredAnswer) -> Response {
    let sealed = Sealed {
        key_id: answer.key_id,
        ciphertext: answer.ciphertext,
    };
    let body = match state.keyring.open(&sealed, &idempotency.aad()) {
        Ok(body) => body,
        Err(error) => return ApiError::internal(&error).into_response(),
    };
    let status = u16::try_from(answer.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if let Some(value) = answer
        .content_type
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// A claimed key not yet answered. Dropped while held (the client went away and the handler
/// was cancelled, or the answer was an error), it releases the key so a retry runs.
struct Held {
    store: Store,
    scope: Scope,
    idempotency: Option<Idempotency>,
}

impl Held {
    async fn release_now(&mut self) {
        if let Some(idempotency) = self.idempotency.take()
            && let Err(error) = release(&self.store, &self.scope, &idempotency).await
        {
            tracing::warn!(%error, "cannot release an idempotency key");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(idempotency) = self.idempotency.take() {
            let store = self.store.clone();
            let scope = self.scope.clone();
            tokio::spawn(async move {
                if let Err(error) = release(&store, &scope, &idempotency).await {
                    tracing::warn!(%error, "cannot release an idempotency key");
                }
            });
        }
    }
}

async fn release(
    store: &Store,
    scope: &Scope,
    idempotency: &Idempotency,
) -> Result<(), crate::store::StoreError> {
    let mut tx = store.write(scope).await?;
    rows::release(&mut tx, &idempotency.key, &idempotency.request_hash).await?;
    tx.commit().await?;
    Ok(())
}
