//! Campaigns: registration (by the operator through the internal API, or by the public API in
//! standalone mode), contacts, progress and completion. The dialer in [`crate::dialer`]
//! works what is registered here.
//!
//! The gateway stores the campaign and its contacts (the dialer in [`crate::dialer`] works
//! them) and serves progress from the contact states. Registration is idempotent: contacts
//! are merged by id (known ones keep their dialing state), a new generation also replaces
//! the spec (pacing, suspension), the same generation again only adds contacts (the operator
//! re-sends an edited contacts ConfigMap that way), and a new uid (the CR was recreated)
//! starts from fresh contacts. A finished campaign stays finished unless new contacts arrive.

use switchboard_crds::CampaignPhase;
use switchboard_crds::internal_api::{Progress, Registration, RegistrationResult, RejectedRow};
use switchboard_crds::phone_number::is_e164;

use crate::outbox;
use crate::store::campaigns::{self, CampaignRow};
use crate::store::{Scope, Store, StoreError, now_ms};

/// Why a campaign registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// A field of the registration is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// Stable machine-readable code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The spec cannot be stored.
    #[error("cannot store the campaign spec: {0}")]
    Spec(#[from] serde_json::Error),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CampaignError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

/// One contact parsed from CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// 1-based data row it came from.
    pub row: usize,
    /// Id (the `id` column, else the phone).
    pub id: String,
    /// E.164 phone.
    pub phone: String,
    /// Name.
    pub name: Option<String>,
    /// Other columns as a JSON object.
    pub variables: String,
}

/// Parses contacts CSV; rows without a valid E.164 `phone`, and rows repeating an earlier
/// row's phone or id, are rejected with their (1-based data) row number.
pub fn parse_contacts(text: &str) -> Result<(Vec<Contact>, Vec<RejectedRow>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("cannot read the CSV header: {e}"))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let phone_at = headers
        .iter()
        .position(|h| h == "phone")
        .ok_or("the CSV has no `phone` column")?;
    let mut contacts: Vec<Contact> = Vec::new();
    let mut rejected = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                rejected.push(RejectedRow {
                    row,
                    error: e.to_string(),
                });
                continue;
            }
        };
        let phone = record.get(phone_at).unwrap_or_default().to_owned();
        if !is_e164(&phone) {
            rejected.push(RejectedRow {
                row,
                error: format!("phone {phone:?} is not E.164"),
            });
            continue;
        }
        let mut variables = serde_json::Map::new();
        let (mut id, mut name) = (None, None);
        for (header, value) in headers.iter().zip(record.iter()) {
            match header.as_str() {
                "phone" => {}
                "id" if !value.is_empty() => id = Some(value.to_owned()),
                "name" if !value.is_empty() => name = Some(value.to_owned()),
                _ => {
                    variables.insert(header.clone(), serde_json::Value::String(value.to_owned()));
                }
            }
        }
        let id = id.unwrap_or_else(|| phone.clone());
        let earlier = seen
            .get(&format!("phone:{phone}"))
            .or_else(|| seen.get(&format!("id:{id}")));
        if let Some(earlier) = earlier {
            rejected.push(RejectedRow {
                row,
                error: format!("duplicate of row {earlier} (same phone or id)"),
            });
            continue;
        }
        seen.insert(format!("phone:{phone}"), row);
        seen.insert(format!("id:{id}"), row);
        contacts.push(Contact {
            row,
            id,
            phone,
            name,
            variables: serde_json::Value::Object(variables).to_string(),
        });
    }
    Ok((contacts, rejected))
}

/// Stores parsed contacts in the caller's transaction. A contact `refuse` gives a reason
/// for, or whose number is on the tenant's do-not-call list, goes into `rejected` (sorted by
/// row) instead; a contact whose id the campaign has keeps its state. Returns how many were
/// added.
pub async fn store_contacts(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    campaign: &str,
    contacts: &[Contact],
    refuse: impl Fn(&Contact) -> Option<String>,
    rejected: &mut Vec<RejectedRow>,
    now: i64,
) -> Result<usize, StoreError> {
    let do_not_call = crate::store::dialer::do_not_call_numbers(&mut *conn, tenant).await?;
    let mut added = 0;
    for contact in contacts {
        let refusal = refuse(contact).or_else(|| {
            do_not_call
                .contains(&contact.phone)
                .then(|| format!("{} is on the do-not-call list", contact.phone))
        });
        if let Some(error) = refusal {
            rejected.push(RejectedRow {
                row: contact.row,
                error,
            });
            continue;
        }
        if campaigns::add_contact(
            &mut *conn,
            tenant,
            campaign,
            &contact.id,
            &contact.phone,
            contact.name.as_deref(),
            &contact.variables,
            now,
        )
        .await?
        {
            added += 1;
        }
    }
    rejected.sort_by_key(|r| r.row);
    Ok(added)
}

async fn contact_total(store: &Store, tenant: &str, name: &str) -> Result<i64, StoreError> {
    let mut tx = store.read(&Scope::tenant(tenant)).await?;
    let counts = campaigns::state_counts(&mut tx, tenant, name).await?;
    tx.commit().await?;
    Ok(counts.iter().map(|(_, n)| n).sum())
}

/// Stores a campaign registration (the operator's, or the public API's in standalone mode).
pub async fn register_campaign(
    store: &Store,
    tenant: &str,
    name: &str,
    body: Registration,
) -> Result<RegistrationResult, CampaignError> {
    let (tenant, name) = (tenant.to_owned(), name.to_owned());
    if !is_e164(&body.from_number) {
        return Err(CampaignError::Invalid {
            field: "fromNumber",
            code: "invalid_number",
            message: "fromNumber is not E.164".to_owned(),
        });
    }
    let (contacts, mut rejected) = match &body.contacts_csv {
        Some(csv) => parse_contacts(csv).map_err(|message| CampaignError::Invalid {
            field: "contactsCsv",
            code: "invalid_csv",
            message,
        })?,
        None => (Vec::new(), Vec::new()),
    };
    let scope = Scope::tenant(&tenant);
    let mut tx = store.write(&scope).await?;
    let existing = campaigns::get(&mut tx, &tenant, &name).await?;
    let same_generation = existing.as_ref().is_some_and(|row| {
        row.uid == body.uid && row.generation == body.generation && row.deleted_at.is_none()
    });
    let now = now_ms();
    if existing.as_ref().is_some_and(|row| row.uid != body.uid) {
        campaigns::clear_contacts(&mut tx, &tenant, &name).await?;
    }
    let added = store_contacts(
        &mut tx,
        &tenant,
        &name,
        &contacts,
        |_| None,
        &mut rejected,
        now,
    )
    .await?;
    let was_completed = existing
        .as_ref()
        .is_some_and(|row| row.uid == body.uid && row.phase == CampaignPhase::Completed.as_str());
    if same_generation {
        // The same spec again (e.g. the contacts ConfigMap was edited): only contacts change,
        // and new ones reopen a finished campaign.
        if added > 0 && was_completed {
            campaigns::set_phase_if(
                &mut tx,
                &tenant,
                &name,
                CampaignPhase::Running.as_str(),
                now,
            )
            .await?;
        }
    } else {
        let spec = serde_json::to_string(&body.spec)?;
        let phase = if body.spec.suspend {
            CampaignPhase::Paused
        } else if was_completed && added == 0 {
            // Nothing new to call: finished stays finished (no second campaign.finished).
            CampaignPhase::Completed
        } else {
            CampaignPhase::Running
        };
        campaigns::upsert(
            &mut tx,
            &CampaignRow {
                tenant_id: tenant.clone(),
                name: name.clone(),
                namespace: body.namespace,
                uid: body.uid,
                generation: body.generation,
                spec,
                from_number: body.from_number,
                phase: phase.as_str().to_owned(),
                deleted_at: None,
                reason: None,
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    let contacts = contact_total(store, &tenant, &name).await?;
    Ok(RegistrationResult {
        registered: true,
        contacts,
        rejected,
    })
}

/// A registered (not stopped) campaign's progress from its contact states; the first time
/// every contact is done it records the campaign as `Completed` and queues
/// `campaign.finished`.
pub async fn progress_of(
    store: &Store,
    tenant: &str,
    name: &str,
) -> Result<Option<Progress>, StoreError> {
    let mut tx = store.read(&Scope::tenant(tenant)).await?;
    let campaign = campaigns::get(&mut tx, tenant, name).await?;
    let counts = campaigns::state_counts(&mut tx, tenant, name).await?;
    tx.commit().await?;
    let Some(campaign) = campaign.filter(|c| c.deleted_at.is_none()) else {
        return Ok(None);
    };
    let mut progress = Progress {
        reason: campaign.reason.clone(),
        ..Progress::default()
    };
    for (state, n) in counts {
        progress.total += n;
        match state.as_str() {
            "pending" => progress.pending += n,
            "dialing" => progress.in_progress += n,
            "completed" => progress.completed += n,
            "failed" => progress.failed += n,
            "no_answer" => progress.no_answer += n,
            _ => {}
        }
    }
    let finished = progress.total > 0 && progress.pending + progress.in_progress == 0;
    if finished && campaign.phase != CampaignPhase::Completed.as_str() {
        mark_finished(store, tenant, name, &progress).await?;
    }
    progress.phase = if finished {
        progress.reason = None;
        CampaignPhase::Completed
    } else {
        stored_phase(&campaign.phase)
    };
    Ok(Some(progress))
}

/// Records the campaign as completed and queues `campaign.finished` once (the phase update
/// and the outbox row share a transaction; a concurrent reader loses the race harmlessly).
async fn mark_finished(
    store: &Store,
    tenant: &str,
    name: &str,
    progress: &Progress,
) -> Result<(), StoreError> {
    let mut tx = store.write(&Scope::tenant(tenant)).await?;
    if campaigns::set_phase_if(
        &mut tx,
        tenant,
        name,
        CampaignPhase::Completed.as_str(),
        now_ms(),
    )
    .await?
    {
        outbox::enqueue_event(
            &mut tx,
            tenant,
            "campaign.finished",
            serde_json::json!({
                "campaign": name, "total": progress.total, "completed": progress.completed,
                "failed": progress.failed, "noAnswer": progress.no_answer,
            }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The phase a campaign row stores (written by this module and the dialer, always one of the
/// CRD's phases); an unreadable one reads as `Pending`, and is logged.
fn stored_phase(text: &str) -> CampaignPhase {
    text.parse().unwrap_or_else(|error| {
        tracing::warn!(%error, "campaign row has an unknown phase");
        CampaignPhase::Pending
    })
}

/// Stops dialling a campaign (idempotent; calls under way finish).
pub async fn stop(store: &Store, tenant: &str, name: &str) -> Result<(), StoreError> {
    let mut tx = store.write(&Scope::tenant(tenant)).await?;
    campaigns::stop(&mut tx, tenant, name, now_ms()).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_parse_with_variables_and_rejections() {
        let (contacts, rejected) =
            parse_contacts("phone,name,order\n+15550100,Ann,42\n555-0101,Bob,7\n+15550102,,\n")
                .unwrap();
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[0].name.as_deref(), Some("Ann"));
        assert_eq!(contacts[0].variables, r#"{"order":"42"}"#);
        assert_eq!(contacts[1].id, "+15550102");
        assert_eq!(
            rejected,
            vec![RejectedRow {
                row: 2,
                error: "phone \"555-0101\" is not E.164".into()
            }]
        );
        assert!(parse_contacts("name\nAnn\n").is_err());
        let (contacts, rejected) =
            parse_contacts("id,phone\na,+15550100\nb,+15550100\na,+15550101\n").unwrap();
        assert_eq!(contacts.len(), 1);
        assert_eq!(
            rejected.iter().map(|r| r.row).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert!(rejected[0].error.contains("duplicate of row 1"));
    }
}
