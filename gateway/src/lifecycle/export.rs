//! Data export: one `tar.gz` archive with one pretty-printed JSON file per kind of data and a
//! `manifest.json` naming them. A tenant's archive (its owner's) holds the tenant, members,
//! numbers, agents, calls, transcripts, recordings (as links: each one's API download path and,
//! for the tenant's own bucket, its bucket and key; the audio itself stays where it is, so an
//! archive never grows by hours of audio), usage and audit log, each read in the tenant's own
//! scope, so nothing of another tenant can enter it. A person's archive holds their account,
//! memberships, sessions and their own entries in the audit logs. Secrets never enter either
//! (no password hash, no token, no provider key). The archive is built in memory: what
//! retention keeps bounds it.

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use super::LifecycleError;
use super::retention::parse_settings;
use crate::state::AppState;
use crate::store::lifecycle;
use crate::store::tenants::{self, TenantRow};
use crate::store::{Scope, audit, numbers, recordings, system, usage, users};

/// The files of a tenant's archive (besides `manifest.json`), in order.
pub const TENANT_FILES: [&str; 9] = [
    "tenant.json",
    "members.json",
    "numbers.json",
    "agents.json",
    "calls.json",
    "transcripts.json",
    "recordings.json",
    "usage.json",
    "audit.json",
];

/// The files of a person's archive (besides `manifest.json`).
pub const USER_FILES: [&str; 4] = [
    "account.json",
    "memberships.json",
    "sessions.json",
    "audit.json",
];

/// Audit entries exported at most (per tenant).
const MAX_AUDIT: i64 = 1_000_000;
/// Months of usage exported at most.
const MAX_MONTHS: i64 = 1200;

fn ms(value: i64) -> String {
    chrono::DateTime::from_timestamp_millis(value)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn audit_json(row: &audit::AuditRow) -> Value {
    json!({
        "id": row.id, "actorType": row.actor_type, "actorId": row.actor_id,
        "action": row.action, "targetType": row.target_type, "targetId": row.target_id,
        "ip": row.ip, "requestId": row.request_id,
        "details": serde_json::from_str::<Value>(&row.details).unwrap_or(Value::Null),
        "createdAt": ms(row.created_at),
    })
}

/// Everything of `tenant`, as `tar.gz` bytes.
pub async fn tenant_archive(
    state: &AppState,
    tenant: &TenantRow,
    now: i64,
) -> Result<Vec<u8>, LifecycleError> {
    let id = &tenant.id;
    let mut tx = state.store.read(&Scope::tenant(id)).await?;
    let lifecycle_row = lifecycle::get(&mut tx, id).await?.unwrap_or_default();
    let members = tenants::members(&mut tx, id).await?;
    let numbers = numbers::for_tenant(&mut tx, id).await?;
    let calls = lifecycle::all_calls(&mut tx, id).await?;
    let turns = lifecycle::all_turns(&mut tx, id).await?;
    let recorded = recordings::older_than(&mut tx, id, i64::MAX, i64::MAX).await?;
    let usage = usage::history(&mut tx, id, None, MAX_MONTHS).await?;
    let audit = audit::list(&mut tx, id, None, MAX_AUDIT).await?;
    tx.commit().await?;
    let agent = serde_json::from_str::<Value>(&tenant.agent).unwrap_or(Value::Null);
    let files = vec![
        (
            "tenant.json",
            json!({
                "id": tenant.id, "slug": tenant.slug, "name": tenant.name, "plan": tenant.plan,
                "suspended": tenant.suspended.0, "origin": tenant.origin,
                "limits": serde_json::from_str::<Value>(&tenant.limits).unwrap_or(Value::Null),
                "retention": parse_settings(&lifecycle_row.retention),
                "createdAt": ms(tenant.created_at), "updatedAt": ms(tenant.updated_at),
            }),
        ),
        (
            "members.json",
            Value::Array(
                members
                    .iter()
                    .map(|m| json!({"userId": m.user_id, "email": m.email, "name": m.name, "role": m.role, "joinedAt": ms(m.created_at)}))
                    .collect(),
            ),
        ),
        (
            "numbers.json",
            Value::Array(
                numbers
                    .iter()
                    .map(|n| json!({"e164": n.e164, "carrier": n.carrier, "account": n.account, "agent": n.agent, "updatedAt": ms(n.updated_at)}))
                    .collect(),
            ),
        ),
        (
            "agents.json",
            json!({
                "default": agent,
                "byNumber": numbers.iter().filter_map(|n| n.agent.as_ref().map(|a| (n.e164.clone(), json!(a)))).collect::<serde_json::Map<_, _>>(),
            }),
        ),
        (
            "calls.json",
            Value::Array(
                calls
                    .iter()
                    .map(|c| json!({
                        "id": c.id, "carrier": c.carrier, "carrierCallId": c.carrier_call_id,
                        "direction": c.direction, "from": c.from_number, "to": c.to_number,
                        "status": c.status, "outcome": c.outcome, "startedAt": ms(c.started_at),
                        "answeredAt": c.answered_at.map(ms), "endedAt": c.ended_at.map(ms),
                        "durationSeconds": c.duration_seconds, "turns": c.turns,
                        "campaign": c.campaign, "contact": c.contact, "source": c.source,
                    }))
                    .collect(),
            ),
        ),
        (
            "transcripts.json",
            Value::Array(
                turns
                    .iter()
                    .map(|t| json!({"callId": t.call_id, "index": t.idx, "role": t.role, "text": t.text, "offsetMs": t.offset_ms}))
                    .collect(),
            ),
        ),
        (
            "recordings.json",
            Value::Array(
                recorded
                    .iter()
                    .map(|r| json!({
                        "id": r.id, "callId": r.call_id, "format": r.format, "channels": r.channels,
                        "durationMs": r.duration_ms, "bytes": r.bytes, "sha256": r.sha256,
                        "storage": r.storage, "bucket": r.bucket, "objectKey": r.object_key,
                        "createdAt": ms(r.created_at),
                        "download": crate::recordings::download_path(&tenant.slug, &r.call_id),
                    }))
                    .collect(),
            ),
        ),
        (
            "usage.json",
            Value::Array(
                usage
                    .iter()
                    .map(|u| json!({
                        "period": u.period, "calls": u.call_count, "callMinutes": u.call_minutes,
                        "apiRequests": u.api_requests, "sttMs": u.stt_ms, "ttsCharacters": u.tts_characters,
                    }))
                    .collect(),
            ),
        ),
        ("audit.json", Value::Array(audit.iter().map(audit_json).collect())),
    ];
    pack(
        files,
        json!({"kind": "tenant", "tenantId": tenant.id, "exportedAt": ms(now)}),
    )
    .await
}

/// A person's own data, as `tar.gz` bytes.
pub async fn user_archive(
    state: &AppState,
    user_id: &str,
    now: i64,
) -> Result<Vec<u8>, LifecycleError> {
    let mut tx = state.store.read(&Scope::user(user_id)).await?;
    let user = users::by_id(&mut tx, user_id)
        .await?
        .ok_or(LifecycleError::NotFound("account"))?;
    let memberships = tenants::tenants_of_user(&mut tx, user_id).await?;
    let sessions = lifecycle::sessions_of(&mut tx, user_id).await?;
    tx.commit().await?;
    let mut tx = system::read(&state.store).await?;
    let audit = lifecycle::audit_by_actor(&mut tx, user_id).await?;
    tx.commit().await?;
    let files = vec![
        (
            "account.json",
            json!({
                "id": user.id, "email": user.email, "name": user.name,
                "emailVerifiedAt": user.email_verified_at.map(ms), "createdAt": ms(user.created_at),
            }),
        ),
        (
            "memberships.json",
            Value::Array(
                memberships
                    .iter()
                    .map(|(t, role)| json!({"tenantId": t.id, "slug": t.slug, "name": t.name, "role": role.as_str()}))
                    .collect(),
            ),
        ),
        (
            "sessions.json",
            Value::Array(
                sessions
                    .iter()
                    .map(|s| json!({"id": s.id, "createdAt": ms(s.created_at), "expiresAt": ms(s.expires_at), "revokedAt": s.revoked_at.map(ms)}))
                    .collect(),
            ),
        ),
        (
            "audit.json",
            Value::Array(
                audit
                    .iter()
                    .map(|(tenant_id, row)| {
                        let mut entry = audit_json(row);
                        entry["tenantId"] = json!(tenant_id);
                        entry
                    })
                    .collect(),
            ),
        ),
    ];
    pack(
        files,
        json!({"kind": "account", "userId": user.id, "exportedAt": ms(now)}),
    )
    .await
}

/// Writes `files` and a `manifest.json` (`about` plus the file list) into a `tar.gz`.
async fn pack(
    files: Vec<(&'static str, Value)>,
    mut about: Value,
) -> Result<Vec<u8>, LifecycleError> {
    about["files"] = json!(files.iter().map(|(name, _)| *name).collect::<Vec<_>>());
    tokio::task::spawn_blocking(move || {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        let manifest = ("manifest.json", about);
        for (name, value) in std::iter::once(manifest).chain(files) {
            let bytes = serde_json::to_vec_pretty(&value)
                .map_err(|e| LifecycleError::Archive(e.to_string()))?;
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o600);
            header.set_cksum();
            builder
                .append_data(&mut header, name, bytes.as_slice())
                .map_err(|e| LifecycleError::Archive(e.to_string()))?;
        }
        builder
            .into_inner()
            .and_then(|gz| gz.finish())
            .map_err(|e| LifecycleError::Archive(e.to_string()))
    })
    .await
    .map_err(|e| LifecycleError::Archive(e.to_string()))?
}
