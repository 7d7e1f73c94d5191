//! What the gateway does about a Tenant CR it sees, as pure functions (CR and database rows
//! in, decisions out); [`super`] carries them out against the database and the cluster.

use std::collections::BTreeMap;

use switchboard_crds::LimitPatch;
use switchboard_crds::tenant::{OwnerRole, Tenant, TenantOwner};

use crate::kube::{FIELD_MANAGER, is_linked, spec_field_managers};
use crate::store::Flag;
use crate::store::tenants::{ManifestOwnerRow, ORIGIN_MANIFEST, Role, TenantRow};

/// What to do about a Tenant CR that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The CR belongs to the gateway tenant with this id: mirror it into that row.
    Mirror(String),
    /// No gateway tenant has this name: adopt the CR as a new manifest tenant.
    Adopt,
    /// A gateway tenant holds this name but the CR is not its own (a signup tenant whose CR is
    /// not created yet, or one whose CR was replaced by someone else's): leave both alone.
    NameTaken(String),
    /// The CR is being deleted: wait for it to go.
    Ignore,
}

/// Decides about `cr`, given the gateway tenant whose slug is the CR's name, if any.
///
/// A manifest tenant is the CR of its name: one deleted and applied again (new uid) is the
/// same tenant, re-linked. A signup tenant is linked only through the annotation the gateway
/// wrote when it created the CR.
pub fn decide(cr: &Tenant, row: Option<&TenantRow>) -> Decision {
    if cr.metadata.deletion_timestamp.is_some() {
        return Decision::Ignore;
    }
    match row {
        None => Decision::Adopt,
        Some(row) if row.origin == ORIGIN_MANIFEST || is_linked(cr, row) => {
            Decision::Mirror(row.id.clone())
        }
        Some(row) => Decision::NameTaken(row.id.clone()),
    }
}

/// The CR's `spec.limits` as the stored [`LimitPatch`] JSON (`{}` without limits).
fn limits_json(cr: &Tenant) -> String {
    let patch = cr
        .spec
        .limits
        .as_ref()
        .map(LimitPatch::from)
        .unwrap_or_default();
    serde_json::to_string(&patch).unwrap_or_else(|_| "{}".to_owned())
}

/// `row` as the CR says it is (name, plan, suspension, agent, limits, carrier, uid; attached
/// and activated), or `None` when the row already says so. Fields the gateway alone holds on
/// the CR keep the row's value: the gateway wrote them from the row, and a CR write that
/// failed after the database changed (a Stripe plan change) must not be undone by the mirror;
/// the gateway's next write of the tenant sends them again.
pub fn mirrored(row: &TenantRow, cr: &Tenant, now: i64) -> Option<TenantRow> {
    let held = gateway_alone(cr);
    let pick = |field: &str, ours: &str, theirs: String| {
        if held.contains(field) {
            ours.to_owned()
        } else {
            theirs
        }
    };
    let next = TenantRow {
        name: pick("displayName", &row.name, cr.spec.display_name.clone()),
        plan: pick("plan", &row.plan, cr.spec.plan.as_str().to_owned()),
        suspended: Flag(cr.spec.suspended),
        agent: pick(
            "agent",
            &row.agent,
            serde_json::to_string(&cr.spec.agent).ok()?,
        ),
        agents: pick(
            "agents",
            &row.agents,
            serde_json::to_string(&cr.spec.agents).ok()?,
        ),
        limits: limits_json(cr),
        carrier: pick(
            "carrier",
            &row.carrier,
            serde_json::to_string(&cr.spec.carrier).ok()?,
        ),
        cr_uid: cr.metadata.uid.clone(),
        activated_at: row.activated_at.or(Some(now)),
        detached_at: None,
        ..row.clone()
    };
    let same = |a: &str, b: &str| {
        serde_json::from_str::<serde_json::Value>(a).ok()
            == serde_json::from_str::<serde_json::Value>(b).ok()
    };
    let same_agent = same(&row.agent, &next.agent) && same(&row.agents, &next.agents);
    let unchanged = row.name == next.name
        && row.plan == next.plan
        && row.suspended.0 == next.suspended.0
        && same_agent
        && row.limits == next.limits
        && same(&row.carrier, &next.carrier)
        && row.cr_uid == next.cr_uid
        && row.activated_at == next.activated_at
        && row.detached_at.is_none();
    (!unchanged).then_some(next)
}

/// The spec fields of `cr` that the gateway's field manager holds and no other manager does.
fn gateway_alone(cr: &Tenant) -> std::collections::BTreeSet<String> {
    spec_field_managers(cr)
        .into_iter()
        .filter(|(_, managers)| managers.len() == 1 && managers.contains(FIELD_MANAGER))
        .map(|(field, _)| field)
        .collect()
}

/// A new manifest tenant for `cr` (slug = the CR's name), activated now.
pub fn adopted(cr: &Tenant, id: String, now: i64) -> Option<TenantRow> {
    let slug = cr.metadata.name.clone()?;
    let row = TenantRow {
        id,
        slug,
        name: String::new(),
        plan: String::new(),
        suspended: Flag(false),
        agent: String::new(),
        agents: "{}".to_owned(),
        created_at: now,
        updated_at: now,
        origin: ORIGIN_MANIFEST.to_owned(),
        cr_uid: None,
        activated_at: Some(now),
        detached_at: None,
        limits: "{}".to_owned(),
        carrier: "{}".to_owned(),
    };
    Some(mirrored(&row, cr, now).unwrap_or(row))
}

/// What to do about a gateway tenant whose CR is not in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// An activated signup tenant whose CR was never seen: create it (its creation failed or
    /// is in flight).
    Create,
    /// The CR existed and was deleted: keep the tenant as a suspended archive.
    Detach,
    /// Nothing (not activated yet, or already detached).
    Nothing,
}

/// Decides about `row` when its CR is absent from a complete listing.
pub fn missing(row: &TenantRow) -> Missing {
    if row.detached_at.is_some() || row.activated_at.is_none() {
        Missing::Nothing
    } else if row.cr_uid.is_some() || row.origin == ORIGIN_MANIFEST {
        Missing::Detach
    } else {
        Missing::Create
    }
}

/// `row` detached at `now`: suspended, never re-created.
pub fn detached(row: &TenantRow, now: i64) -> TenantRow {
    TenantRow {
        suspended: Flag(true),
        detached_at: Some(now),
        ..row.clone()
    }
}

/// The gateway role an owner entry grants.
pub fn role_of(role: OwnerRole) -> Role {
    match role {
        OwnerRole::Owner => Role::Owner,
        OwnerRole::Admin => Role::Admin,
        OwnerRole::Member => Role::Member,
        OwnerRole::Viewer => Role::Viewer,
    }
}

/// Lower-cased, trimmed address (how users' addresses are stored).
pub fn normalized_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// How a tenant's manifest owners change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerChanges {
    /// Every listed address with its role (the desired set, deduplicated; the highest role
    /// wins when an address is listed twice).
    pub desired: BTreeMap<String, Role>,
    /// Addresses no longer listed: their manifest entry and membership go.
    pub removed: Vec<String>,
}

/// Compares the owners a manifest lists with those stored for the tenant.
pub fn owner_changes(stored: &[ManifestOwnerRow], listed: &[TenantOwner]) -> OwnerChanges {
    let mut desired: BTreeMap<String, Role> = BTreeMap::new();
    for owner in listed {
        let email = normalized_email(&owner.email);
        let role = role_of(owner.role);
        desired
            .entry(email)
            .and_modify(|r| *r = (*r).max(role))
            .or_insert(role);
    }
    let removed = stored
        .iter()
        .filter(|row| !desired.contains_key(&row.email))
        .map(|row| row.email.clone())
        .collect();
    OwnerChanges { desired, removed }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cr(name: &str, uid: &str, spec: serde_json::Value) -> Tenant {
        serde_json::from_value(
            json!({"apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name, "uid": uid}, "spec": spec}),
        )
        .unwrap()
    }

    fn row(origin: &str) -> TenantRow {
        TenantRow {
            id: "t-1".into(),
            slug: "acme".into(),
            name: "Acme".into(),
            plan: "free".into(),
            suspended: Flag(false),
            agent: serde_json::to_string(&switchboard_crds::tenant::AgentSpec::default()).unwrap(),
            agents: "{}".into(),
            created_at: 1,
            updated_at: 1,
            origin: origin.into(),
            cr_uid: None,
            activated_at: None,
            detached_at: None,
            limits: "{}".into(),
            carrier: "{}".into(),
        }
    }

    #[test]
    fn a_manifest_tenant_is_adopted_once_and_a_signup_name_is_never_taken_over() {
        let manifest = cr(
            "acme",
            "u-1",
            json!({"displayName": "Acme Corp", "plan": "starter"}),
        );
        assert_eq!(decide(&manifest, None), Decision::Adopt);
        // A signup tenant already holds the name (its owner has not verified yet, so it has no
        // CR): the manifest's Tenant is not adopted into it, and it is not written either.
        let signup = row("signup");
        assert_eq!(
            decide(&manifest, Some(&signup)),
            Decision::NameTaken("t-1".into())
        );
        // Its own CR (annotation) is mirrored.
        let mut own = manifest.clone();
        own.metadata.annotations = Some(
            [(
                crate::kube::TENANT_ID_ANNOTATION.to_owned(),
                "t-1".to_owned(),
            )]
            .into(),
        );
        assert_eq!(decide(&own, Some(&signup)), Decision::Mirror("t-1".into()));
        // A manifest tenant is its name, whatever the uid (deleted and applied again).
        let adopted_row = adopted(&manifest, "t-2".into(), 10).unwrap();
        let again = cr("acme", "u-9", json!({"displayName": "Acme Corp"}));
        assert_eq!(
            decide(&again, Some(&adopted_row)),
            Decision::Mirror("t-2".into())
        );
        let mut deleting = again.clone();
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
        );
        assert_eq!(decide(&deleting, Some(&adopted_row)), Decision::Ignore);
    }

    #[test]
    fn the_row_mirrors_the_cr_including_suspension_and_limits() {
        let manifest = cr(
            "acme",
            "u-1",
            json!({"displayName": "Acme Corp", "plan": "starter", "suspended": true,
                   "limits": {"monthlyCalls": 7}, "agent": {"greeting": "Hi"}}),
        );
        let adopted_row = adopted(&manifest, "t-2".into(), 10).unwrap();
        assert_eq!(adopted_row.slug, "acme");
        assert_eq!(adopted_row.origin, ORIGIN_MANIFEST);
        assert_eq!(adopted_row.name, "Acme Corp");
        assert_eq!(adopted_row.plan, "starter");
        assert!(adopted_row.suspended.0);
        assert_eq!(adopted_row.cr_uid.as_deref(), Some("u-1"));
        assert_eq!(adopted_row.activated_at, Some(10));
        let limits: LimitPatch = serde_json::from_str(&adopted_row.limits).unwrap();
        assert_eq!(limits.monthly_calls, Some(Some(7)));
        let agent: serde_json::Value = serde_json::from_str(&adopted_row.agent).unwrap();
        assert_eq!(agent["greeting"], "Hi");
        // Nothing changed: no write.
        assert!(mirrored(&adopted_row, &manifest, 20).is_none());
        // kubectl lifts the suspension: one write.
        let lifted = cr(
            "acme",
            "u-1",
            json!({"displayName": "Acme Corp", "plan": "starter",
            "limits": {"monthlyCalls": 7}, "agent": {"greeting": "Hi"}}),
        );
        let next = mirrored(&adopted_row, &lifted, 20).unwrap();
        assert!(!next.suspended.0);
        assert_eq!(next.activated_at, Some(10), "activation time kept");
    }

    #[test]
    fn fields_the_gateway_alone_holds_keep_the_rows_value() {
        let mut row = row("signup");
        row.plan = "starter".into();
        row.name = "Old name".into();
        let mut cr = cr(
            "acme",
            "u-1",
            json!({"displayName": "Acme", "plan": "free", "suspended": true}),
        );
        cr.metadata.managed_fields = Some(
            serde_json::from_value(json!([
                {"manager": "switchboard-gateway", "operation": "Apply",
                 "fieldsV1": {"f:spec": {"f:plan": {}, "f:displayName": {}}}},
                {"manager": "kubectl-patch", "operation": "Update",
                 "fieldsV1": {"f:spec": {"f:suspended": {}, "f:displayName": {}}}}
            ]))
            .unwrap(),
        );
        let next = mirrored(&row, &cr, 5).unwrap();
        assert_eq!(
            next.plan, "starter",
            "a Stripe change the CR has not caught up with stays"
        );
        assert!(next.suspended.0, "kubectl's suspension is mirrored");
        assert_eq!(next.name, "Acme", "a shared field follows the CR");
    }

    #[test]
    fn a_missing_cr_is_created_detached_or_left_alone() {
        let mut signup = row("signup");
        assert_eq!(missing(&signup), Missing::Nothing, "not verified yet");
        signup.activated_at = Some(5);
        assert_eq!(missing(&signup), Missing::Create, "verified, CR never seen");
        signup.cr_uid = Some("u-1".into());
        assert_eq!(missing(&signup), Missing::Detach, "seen, then deleted");
        let archived = detached(&signup, 9);
        assert!(archived.suspended.0);
        assert_eq!(missing(&archived), Missing::Nothing);
        let mut manifest = row(ORIGIN_MANIFEST);
        manifest.activated_at = Some(5);
        assert_eq!(missing(&manifest), Missing::Detach);
    }

    #[test]
    fn owners_are_compared_by_lower_cased_address() {
        let stored = vec![
            ManifestOwnerRow {
                tenant_id: "t".into(),
                email: "ops@acme.io".into(),
                role: "owner".into(),
                invited_at: Some(1),
            },
            ManifestOwnerRow {
                tenant_id: "t".into(),
                email: "gone@acme.io".into(),
                role: "viewer".into(),
                invited_at: None,
            },
        ];
        let listed: Vec<TenantOwner> = serde_json::from_value(json!([
            {"email": "Ops@Acme.io"},
            {"email": "dev@acme.io", "role": "viewer"},
            {"email": "DEV@acme.io", "role": "admin"}
        ]))
        .unwrap();
        let changes = owner_changes(&stored, &listed);
        assert_eq!(
            changes.desired,
            BTreeMap::from([
                ("dev@acme.io".to_owned(), Role::Admin),
                ("ops@acme.io".to_owned(), Role::Owner)
            ])
        );
        assert_eq!(changes.removed, vec!["gone@acme.io".to_owned()]);
    }
}
