//! Re-encryption after a master-key rotation: every stored secret sealed under a former key
//! (`MASTER_ENCRYPTION_PREVIOUS_KEYS`) — provider and carrier credentials, customer-webhook
//! secrets, stored idempotent answers — is opened and sealed again under the current key
//! (`MASTER_ENCRYPTION_KEY`). Runs at start and on every pass of the data-lifecycle worker,
//! and as `switchboard-gateway rekey`; once it reports nothing left, the former key can be
//! removed from the configuration.

use crate::crypto::{Keyring, Sealed, credential_aad};
use crate::idempotency::answer_aad;
use crate::outbox::secret_aad;
use crate::store::lifecycle::{self, SealedRow, SealedTable};
use crate::store::{Store, system};

use super::LifecycleError;

/// Rows handled per transaction.
const BATCH: i64 = 100;

/// What a re-encryption did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rekeyed {
    /// Provider and carrier credentials sealed again.
    pub provider_credentials: u64,
    /// Customer-webhook secrets (current, and previous ones in their grace period) sealed again.
    pub webhook_endpoints: u64,
    /// Stored idempotent answers (`Idempotency-Key`, kept 24 hours) sealed again.
    pub idempotent_answers: u64,
    /// Secrets sealed under a key no longer configured (left as they are; they cannot be
    /// read until that key is configured again).
    pub unreadable: u64,
}

fn aad(table: SealedTable, row: &SealedRow) -> String {
    match table {
        SealedTable::ProviderCredentials => credential_aad(&row.tenant_id, &row.id),
        SealedTable::WebhookEndpoints | SealedTable::WebhookPreviousSecrets => {
            secret_aad(&row.tenant_id, &row.id)
        }
    }
}

/// Seals every secret under the current key of `keyring`.
pub async fn rekey_all(store: &Store, keyring: &Keyring) -> Result<Rekeyed, LifecycleError> {
    let mut done = Rekeyed::default();
    for table in [
        SealedTable::ProviderCredentials,
        SealedTable::WebhookEndpoints,
        SealedTable::WebhookPreviousSecrets,
    ] {
        let mut after = String::new();
        loop {
            let mut tx = system::write(store).await?;
            let rows = lifecycle::sealed_under_other_keys(
                &mut tx,
                table,
                keyring.current_key_id(),
                &after,
                BATCH,
            )
            .await?;
            let Some(last) = rows.last() else {
                tx.commit().await?;
                break;
            };
            after = last.id.clone();
            for row in &rows {
                let aad = aad(table, row);
                let sealed = Sealed {
                    key_id: row.key_id.clone(),
                    ciphertext: row.ciphertext.clone(),
                };
                let plain = match keyring.open(&sealed, &aad) {
                    Ok(plain) => plain,
                    Err(error) => {
                        tracing::warn!(%error, table = ?table, id = %row.id, "stored secret cannot be decrypted with any configured master key");
                        done.unreadable += 1;
                        continue;
                    }
                };
                let fresh = keyring.seal(&plain, &aad)?;
                if lifecycle::reseal(&mut tx, table, row, &fresh.key_id, &fresh.ciphertext).await? {
                    match table {
                        SealedTable::ProviderCredentials => done.provider_credentials += 1,
                        SealedTable::WebhookEndpoints | SealedTable::WebhookPreviousSecrets => {
                            done.webhook_endpoints += 1
                        }
                    }
                }
            }
            tx.commit().await?;
        }
    }
    let mut skip = 0;
    loop {
        let mut tx = system::write(store).await?;
        let rows =
            lifecycle::answers_under_other_keys(&mut tx, keyring.current_key_id(), skip, BATCH)
                .await?;
        if rows.is_empty() {
            tx.commit().await?;
            break;
        }
        for row in &rows {
            let aad = answer_aad(&row.tenant_id, &row.principal, &row.key_hash);
            let sealed = Sealed {
                key_id: row.key_id.clone(),
                ciphertext: row.ciphertext.clone(),
            };
            let Ok(plain) = keyring.open(&sealed, &aad) else {
                done.unreadable += 1;
                skip += 1;
                continue;
            };
            let fresh = keyring.seal(&plain, &aad)?;
            // `false`: re-sealed or removed meanwhile; either way no longer under an old key.
            if lifecycle::reseal_answer(&mut tx, row, &fresh.key_id, &fresh.ciphertext).await? {
                done.idempotent_answers += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(done)
}
