//! Call recordings (issue 19 item 1), never speaking HTTP: where a tenant's recordings go,
//! storing the runtime's WAV file there with its row and `recording.saved`, reading it back,
//! and removing it (retention, tenant purge).
//!
//! Where (decided once per recording, kept in its row):
//!
//! * the tenant's own S3-compatible bucket when it stored an `s3` credential (its default one):
//!   secret = secret access key; metadata `bucket` and `access_key_id` (required), `region`
//!   (default `us-east-1`), `endpoint` (an S3-compatible server's URL; absent: AWS), `prefix`
//!   (default `recordings/`). The endpoint obeys the outbound URL policy
//!   (`switchboard_crds::outbound`) when stored and again on every connection;
//! * otherwise, outside Kubernetes mode, the gateway's recordings folder
//!   (`SWITCHBOARD_RECORDINGS_DIR`, standalone: `<data-dir>/recordings`), one folder per tenant;
//! * otherwise nowhere: in Kubernetes mode an agent cannot turn recording on without an `s3`
//!   credential (422, [`require_storage`]), and an upload that still arrives is refused.
//!
//! Why the gateway stores and the runtime only uploads to it: the tenant's S3 secret never
//! leaves the gateway (no copy in the tenant namespace), both modes share one code path, and
//! the row and the webhook are written only once the object is there.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::client::{HttpClient, HttpConnector};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore};
use serde_json::json;
use sha2::{Digest, Sha256};
use switchboard_crds::recording::{SAMPLE_RATE, is_safe_call_id};

use crate::crypto::{Sealed, credential_aad};
use crate::outbox;
use crate::state::AppState;
use crate::store::credentials::{self, CredentialRow};
use crate::store::recordings::{self, RecordingRow};
use crate::store::tenants::TenantRow;
use crate::store::{Scope, StoreError, new_id, now_ms};

/// The credential vendor of a tenant's S3-compatible storage.
pub const S3_PROVIDER: &str = "s3";
/// Object key prefix in the tenant's bucket when its credential sets none.
pub const DEFAULT_PREFIX: &str = "recordings/";
/// Region when the credential sets none (what S3-compatible servers accept).
pub const DEFAULT_REGION: &str = "us-east-1";
/// Recordings handled per step of a retention or purge pass.
const PAGE: i64 = 200;

/// Why a recording cannot be stored, read or removed.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tenant has nowhere to keep recordings (Kubernetes mode without an `s3` credential).
    #[error(
        "recordings need the tenant's own S3-compatible storage: store a credential with provider `s3` first"
    )]
    NoStorage,
    /// The upload is not a recording the runtime writes (16-bit PCM WAV at 8 kHz, 1 or 2
    /// channels), or names an unusable call id.
    #[error("not a call recording: {0}")]
    Invalid(String),
    /// The `s3` credential is incomplete or its endpoint breaks the outbound URL policy.
    #[error("the s3 credential is unusable: {0}")]
    Credential(String),
    /// The object store refused or failed (message without secrets).
    #[error("object storage failed: {0}")]
    Storage(String),
    /// The object (or the credential it was written with) is gone.
    #[error("the recording's file is gone")]
    Gone,
}

impl From<object_store::Error> for RecordingError {
    fn from(error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { .. } => Self::Gone,
            other => Self::Storage(other.to_string()),
        }
    }
}

/// A tenant's S3 settings (credential metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The server's URL; `None`: AWS.
    pub endpoint: Option<String>,
    /// Bucket.
    pub bucket: String,
    /// Region.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Key prefix.
    pub prefix: String,
}

impl S3Settings {
    /// Reads and checks the metadata of an `s3` credential; the error names the field
    /// (`metadata.bucket`, …).
    pub fn from_metadata(
        metadata: &BTreeMap<String, String>,
        allow_private: bool,
    ) -> Result<Self, (String, String)> {
        let required = |key: &str| {
            metadata
                .get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    (
                        format!("metadata.{key}"),
                        format!("an s3 credential needs metadata.{key}"),
                    )
                })
        };
        let bucket = required("bucket")?;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err((
                "metadata.bucket".to_owned(),
                "a bucket name of 3-63 lowercase letters, digits, '-' or '.'".to_owned(),
            ));
        }
        let access_key_id = required("access_key_id")?;
        let endpoint = metadata
            .get("endpoint")
            .map(|v| v.trim().trim_end_matches('/').to_owned())
            .filter(|v| !v.is_empty());
        if let Some(url) = &endpoint {
            switchboard_crds::outbound::check_url(url, allow_private)
                .map_err(|e| ("metadata.endpoint".to_owned(), e.to_string()))?;
        }
        let prefix = metadata
            .get("prefix")
            .map(|p| p.trim().trim_matches('/').to_owned())
            .map(|p| if p.is_empty() { p } else { format!("{p}/") })
            .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        if prefix.split('/').any(|part| part == ".." || part == ".") {
            return Err((
                "metadata.prefix".to_owned(),
                "a key prefix without '.' or '..' segments".to_owned(),
            ));
        }
        Ok(Self {
            endpoint,
            bucket,
            region: metadata
                .get("region")
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            access_key_id,
            prefix,
        })
    }
}

/// Connections through the platform's outbound client (`switchboard_crds::outbound`): the
/// endpoint's addresses are checked again when connecting (DNS rebinding), no redirects, no
/// proxy.
#[derive(Debug)]
struct GuardedConnector {
    allow_private: bool,
}

impl HttpConnector for GuardedConnector {
    // The store's client options (timeouts, proxies) give way to the policy's own client.
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = switchboard_crds::outbound::guarded_client(self.allow_private)
            .connect_timeout(std::time::Duration::from_secs(10))
            // Long enough for the largest recording (four hours, ~460 MB).
            .timeout(std::time::Duration::from_secs(600))
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(HttpClient::new(client))
    }
}

/// Where one recording is (or goes).
enum Target {
    S3 {
        credential_id: String,
        settings: S3Settings,
        secret: String,
    },
    Local(PathBuf),
}

impl Target {
    fn store(&self, allow_private: bool) -> Result<Arc<dyn ObjectStore>, RecordingError> {
        match self {
            Target::S3 {
                settings, secret, ..
            } => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&settings.bucket)
                    .with_region(&settings.region)
                    .with_access_key_id(&settings.access_key_id)
                    .with_secret_access_key(secret)
                    .with_http_connector(GuardedConnector { allow_private });
                if let Some(endpoint) = &settings.endpoint {
                    // S3-compatible servers: path-style requests to the endpoint itself.
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                Ok(Arc::new(
                    builder
                        .build()
                        .map_err(|e| RecordingError::Credential(e.to_string()))?,
                ))
            }
            Target::Local(dir) => {
                create_private_dir(dir)?;
                Ok(Arc::new(LocalFileSystem::new_with_prefix(dir)?))
            }
        }
    }
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), RecordingError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| RecordingError::Storage(format!("cannot create the recordings folder: {e}")))
}

fn decrypt(state: &AppState, row: &CredentialRow) -> Result<String, RecordingError> {
    let sealed = Sealed {
        key_id: row.key_id.clone(),
        ciphertext: row.ciphertext.clone(),
    };
    let secret = state
        .keyring
        .open(&sealed, &credential_aad(&row.tenant_id, &row.id))
        .map_err(|e| RecordingError::Credential(e.to_string()))?;
    String::from_utf8(secret).map_err(|_| RecordingError::Credential("not UTF-8".to_owned()))
}

fn s3_target(state: &AppState, row: &CredentialRow) -> Result<Target, RecordingError> {
    let metadata: BTreeMap<String, String> =
        serde_json::from_str(&row.metadata).unwrap_or_default();
    let settings = S3Settings::from_metadata(&metadata, state.config.outbound_allow_private)
        .map_err(|(_, message)| RecordingError::Credential(message))?;
    Ok(Target::S3 {
        credential_id: row.id.clone(),
        settings,
        secret: decrypt(state, row)?,
    })
}

/// The tenant's default `s3` credential (or its only one).
async fn s3_credential(
    state: &AppState,
    tenant_id: &str,
) -> Result<Option<CredentialRow>, RecordingError> {
    let mut tx = state.store.read(&Scope::tenant(tenant_id)).await?;
    let rows = credentials::list(&mut tx, tenant_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let mut s3: Vec<CredentialRow> = rows
        .into_iter()
        .filter(|r| r.provider == S3_PROVIDER)
        .collect();
    let default = s3.iter().position(|r| r.is_default.0).unwrap_or(0);
    Ok((!s3.is_empty()).then(|| s3.swap_remove(default)))
}

fn local_dir(state: &AppState, tenant_id: &str) -> Option<PathBuf> {
    if state.config.kubernetes {
        return None;
    }
    Some(state.config.recordings_dir.as_ref()?.join(tenant_id))
}

/// Where a new recording of the tenant goes.
async fn target_for_new(state: &AppState, tenant_id: &str) -> Result<Target, RecordingError> {
    if let Some(row) = s3_credential(state, tenant_id).await? {
        return s3_target(state, &row);
    }
    local_dir(state, tenant_id)
        .map(Target::Local)
        .ok_or(RecordingError::NoStorage)
}

/// Where a stored recording is.
async fn target_of(state: &AppState, row: &RecordingRow) -> Result<Target, RecordingError> {
    match row.storage.as_str() {
        "s3" => {
            let id = row.credential_id.as_deref().ok_or(RecordingError::Gone)?;
            let mut tx = state.store.read(&Scope::tenant(&row.tenant_id)).await?;
            let credential = credentials::get(&mut tx, &row.tenant_id, id).await?;
            tx.commit().await.map_err(StoreError::from)?;
            let credential = credential.ok_or(RecordingError::Gone)?;
            let mut target = s3_target(state, &credential)?;
            // The bucket it was written to, even if the credential now names another.
            if let (Target::S3 { settings, .. }, Some(bucket)) = (&mut target, &row.bucket) {
                settings.bucket = bucket.clone();
            }
            Ok(target)
        }
        _ => local_dir(state, &row.tenant_id)
            .map(Target::Local)
            .ok_or(RecordingError::Gone),
    }
}

/// Whether the tenant can keep recordings: refuses ([`RecordingError::NoStorage`]) in
/// Kubernetes mode without an `s3` credential, so turning recording on fails at once rather
/// than at the end of every call.
pub async fn require_storage(state: &AppState, tenant_id: &str) -> Result<(), RecordingError> {
    if s3_credential(state, tenant_id).await?.is_some() || local_dir(state, tenant_id).is_some() {
        Ok(())
    } else {
        Err(RecordingError::NoStorage)
    }
}

/// What a WAV file holds: (channels, duration in ms). Only the runtime's format is taken.
pub fn inspect_wav(wav: &[u8]) -> Result<(u16, u64), RecordingError> {
    let reader = hound::WavReader::new(Cursor::new(wav))
        .map_err(|e| RecordingError::Invalid(e.to_string()))?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
        || !(1..=2).contains(&spec.channels)
    {
        return Err(RecordingError::Invalid(format!(
            "expected 16-bit PCM at {SAMPLE_RATE} Hz with 1 or 2 channels, got {} bits at {} Hz with {} channels",
            spec.bits_per_sample, spec.sample_rate, spec.channels
        )));
    }
    // `duration()` counts frames (samples per channel) from the data chunk's length.
    let duration_ms = u64::from(reader.duration()) * 1000 / u64::from(SAMPLE_RATE);
    Ok((spec.channels, duration_ms))
}

/// Stores the runtime's recording of `call_id`: the object first, then its row and the
/// `recording.saved` webhook in one transaction. A repeated upload of a call that has a
/// recording changes nothing and returns the stored row (`false`: not new).
pub async fn save(
    state: &AppState,
    tenant: &TenantRow,
    call_id: &str,
    wav: Bytes,
) -> Result<(RecordingRow, bool), RecordingError> {
    if !is_safe_call_id(call_id) {
        return Err(RecordingError::Invalid("unusable call id".to_owned()));
    }
    let (channels, duration_ms) = inspect_wav(&wav)?;
    let scope = Scope::tenant(&tenant.id);
    let mut tx = state.store.read(&scope).await?;
    let existing = recordings::for_call(&mut tx, &tenant.id, call_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    if let Some(row) = existing {
        return Ok((row, false));
    }
    let target = target_for_new(state, &tenant.id).await?;
    let (storage, credential_id, bucket, key) = match &target {
        Target::S3 {
            credential_id,
            settings,
            ..
        } => (
            "s3",
            Some(credential_id.clone()),
            Some(settings.bucket.clone()),
            format!("{}{call_id}.wav", settings.prefix),
        ),
        Target::Local(_) => ("local", None, None, format!("{call_id}.wav")),
    };
    let store = target.store(state.config.outbound_allow_private)?;
    let bytes = i64::try_from(wav.len()).unwrap_or(i64::MAX);
    let sha256 = hex::encode(Sha256::digest(&wav));
    store
        .put(&ObjectPath::from(key.as_str()), wav.into())
        .await?;
    let row = RecordingRow {
        id: new_id(),
        tenant_id: tenant.id.clone(),
        call_id: call_id.to_owned(),
        storage: storage.to_owned(),
        credential_id,
        bucket,
        object_key: key,
        format: "wav".to_owned(),
        channels: i64::from(channels),
        duration_ms: i64::try_from(duration_ms).unwrap_or(i64::MAX),
        bytes,
        sha256,
        created_at: now_ms(),
    };
    let mut tx = state.store.write(&scope).await?;
    if !recordings::insert(&mut tx, &row).await? {
        // Another upload of the same call won the race; its row stands (same object key).
        let stored = recordings::for_call(&mut tx, &tenant.id, call_id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        return stored.map(|row| (row, false)).ok_or(RecordingError::Gone);
    }
    outbox::enqueue_event(
        &mut tx,
        &tenant.id,
        "recording.saved",
        json!({
            "callId": row.call_id, "tenant": tenant.slug, "recordingId": row.id,
            "format": row.format, "channels": row.channels, "durationMs": row.duration_ms,
            "bytes": row.bytes, "sha256": row.sha256, "storage": row.storage,
            "bucket": row.bucket, "objectKey": row.object_key,
            "createdAt": chrono::DateTime::from_timestamp_millis(row.created_at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            "download": download_path(&tenant.slug, &row.call_id),
        }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((row, true))
}

/// The API path that streams a call's recording.
pub fn download_path(tenant_slug: &str, call_id: &str) -> String {
    format!("/api/v1/tenants/{tenant_slug}/calls/{call_id}/recording/audio")
}

/// The recording's bytes as a stream, from wherever it is stored.
pub async fn open(
    state: &AppState,
    row: &RecordingRow,
) -> Result<BoxStream<'static, Result<Bytes, RecordingError>>, RecordingError> {
    let store = target_of(state, row)
        .await?
        .store(state.config.outbound_allow_private)?;
    let result = store
        .get(&ObjectPath::from(row.object_key.as_str()))
        .await?;
    Ok(result
        .into_stream()
        .map(|chunk| chunk.map_err(RecordingError::from))
        .boxed())
}

/// Removes one recording: the object (already gone is fine), then its row.
pub async fn remove(state: &AppState, row: &RecordingRow) -> Result<(), RecordingError> {
    match target_of(state, row).await {
        Ok(target) => {
            let store = target.store(state.config.outbound_allow_private)?;
            match store
                .delete(&ObjectPath::from(row.object_key.as_str()))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        // The credential it was written with is deleted: nothing left to reach it with.
        Err(RecordingError::Gone) => {
            tracing::warn!(recording = %row.id, "the recording's storage is gone; removing its row only");
        }
        Err(error) => return Err(error),
    }
    let mut tx = state.store.write(&Scope::tenant(&row.tenant_id)).await?;
    recordings::delete(&mut tx, &row.tenant_id, &row.id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Removes the tenant's recordings stored before `before` (Unix ms; `i64::MAX`: all of
/// them); returns how many. A recording whose object cannot be deleted now is kept (and
/// logged) for the next pass.
pub async fn remove_older_than(
    state: &AppState,
    tenant_id: &str,
    before: i64,
) -> Result<u64, RecordingError> {
    let mut removed = 0;
    let mut failed = std::collections::HashSet::new();
    loop {
        let mut tx = state.store.read(&Scope::tenant(tenant_id)).await?;
        let page =
            recordings::older_than(&mut tx, tenant_id, before, PAGE + failed.len() as i64).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let todo: Vec<_> = page.iter().filter(|r| !failed.contains(&r.id)).collect();
        if todo.is_empty() {
            return Ok(removed);
        }
        for row in todo {
            match remove(state, row).await {
                Ok(()) => removed += 1,
                Err(error) => {
                    tracing::warn!(%error, recording = %row.id, "cannot remove a recording yet");
                    failed.insert(row.id.clone());
                }
            }
        }
    }
}

/// Every recording of the tenant (export).
pub async fn all(state: &AppState, tenant_id: &str) -> Result<Vec<RecordingRow>, StoreError> {
    let mut tx = state.store.read(&Scope::tenant(tenant_id)).await?;
    let rows = recordings::older_than(&mut tx, tenant_id, i64::MAX, i64::MAX).await?;
    tx.commit().await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn s3_settings_need_bucket_and_key_and_obey_the_url_policy() {
        let ok = S3Settings::from_metadata(
            &metadata(&[("bucket", "calls"), ("access_key_id", "AKIA1")]),
            false,
        )
        .unwrap();
        assert_eq!(ok.region, DEFAULT_REGION);
        assert_eq!(ok.prefix, DEFAULT_PREFIX);
        assert_eq!(ok.endpoint, None);
        let missing = S3Settings::from_metadata(&metadata(&[("bucket", "calls")]), false);
        assert_eq!(missing.unwrap_err().0, "metadata.access_key_id");
        let bad_bucket = S3Settings::from_metadata(
            &metadata(&[("bucket", "Calls!"), ("access_key_id", "a")]),
            false,
        );
        assert_eq!(bad_bucket.unwrap_err().0, "metadata.bucket");
        let internal = metadata(&[
            ("bucket", "calls"),
            ("access_key_id", "a"),
            ("endpoint", "http://127.0.0.1:9000"),
        ]);
        assert_eq!(
            S3Settings::from_metadata(&internal, false).unwrap_err().0,
            "metadata.endpoint"
        );
        assert!(S3Settings::from_metadata(&internal, true).is_ok());
        let prefixed = S3Settings::from_metadata(
            &metadata(&[
                ("bucket", "calls"),
                ("access_key_id", "a"),
                ("prefix", "/acme/calls/"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(prefixed.prefix, "acme/calls/");
        let escape = metadata(&[
            ("bucket", "calls"),
            ("access_key_id", "a"),
            ("prefix", "../x"),
        ]);
        assert_eq!(
            S3Settings::from_metadata(&escape, false).unwrap_err().0,
            "metadata.prefix"
        );
    }

    #[test]
    fn only_the_runtimes_wav_format_is_taken() {
        let wav = |channels, rate| {
            let mut out = Cursor::new(Vec::new());
            let spec = hound::WavSpec {
                channels,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut writer = hound::WavWriter::new(&mut out, spec).unwrap();
            for _ in 0..(8000 * u32::from(channels)) {
                writer.write_sample(0i16).unwrap();
            }
            writer.finalize().unwrap();
            out.into_inner()
        };
        assert_eq!(inspect_wav(&wav(2, 8000)).unwrap(), (2, 1000));
        assert_eq!(inspect_wav(&wav(1, 8000)).unwrap(), (1, 1000));
        assert!(inspect_wav(&wav(1, 16000)).is_err());
        assert!(inspect_wav(b"not a wav file").is_err());
    }
}
