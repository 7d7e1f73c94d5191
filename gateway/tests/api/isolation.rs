//! Tenant isolation: for every route that takes a tenant or an object id, a second tenant's
//! access token and API key get 403/404 and none of the first tenant's data.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{Account, Options, TestApp, apps};

/// Tenant A's objects.
struct Fixture {
    a: Account,
    a_key: String,
    a_key_id: String,
    a_credential: String,
    a_invitation: String,
}

async fn setup(app: &TestApp) -> (Fixture, Account, String) {
    let a = app.signup("alice@tenant-a.io", "Tenant A").await;
    let ta = format!("/api/v1/tenants/{}", a.slug);
    let key = app
        .post(
            &format!("{ta}/api-keys"),
            Some(&a.access),
            json!({"name": "a", "scopes": ["admin"]}),
        )
        .await;
    let credential = app.post(&format!("{ta}/credentials"), Some(&a.access),
        json!({"provider": "openai", "label": "a-main", "secret": "sk-tenant-a-secret-value-0000"})).await;
    let invitation = app
        .post(
            &format!("{ta}/invitations"),
            Some(&a.access),
            json!({"email": "invitee@tenant-a.io"}),
        )
        .await;
    let fixture = Fixture {
        a_key: key.body["key"].as_str().unwrap().to_owned(),
        a_key_id: key.body["apiKey"]["id"].as_str().unwrap().to_owned(),
        a_credential: credential.body["id"].as_str().unwrap().to_owned(),
        a_invitation: invitation.body["id"].as_str().unwrap().to_owned(),
        a,
    };
    let b = app.signup("bob@tenant-b.io", "Tenant B").await;
    let tb = format!("/api/v1/tenants/{}", b.slug);
    let b_key = app
        .post(
            &format!("{tb}/api-keys"),
            Some(&b.access),
            json!({"name": "b", "scopes": ["admin"]}),
        )
        .await;
    (
        fixture,
        b.clone(),
        b_key.body["key"].as_str().unwrap().to_owned(),
    )
}

fn requests(f: &Fixture, b: &Account) -> Vec<(Method, String, Option<serde_json::Value>)> {
    let ta_slug = format!("/api/v1/tenants/{}", f.a.slug);
    let ta_id = format!("/api/v1/tenants/{}", f.a.tenant_id);
    let tb = format!("/api/v1/tenants/{}", b.slug);
    let cred =
        json!({"provider": "groq", "label": "intruder", "secret": "sk-intruder-000000000000"});
    let mut all = Vec::new();
    for ta in [&ta_slug, &ta_id] {
        all.extend([
            (Method::GET, ta.clone(), None),
            (Method::PATCH, ta.clone(), Some(json!({"name": "pwned"}))),
            (Method::GET, format!("{ta}/members"), None),
            (
                Method::PATCH,
                format!("{ta}/members/{}", f.a.user_id),
                Some(json!({"role": "viewer"})),
            ),
            (
                Method::DELETE,
                format!("{ta}/members/{}", f.a.user_id),
                None,
            ),
            (Method::GET, format!("{ta}/invitations"), None),
            (
                Method::POST,
                format!("{ta}/invitations"),
                Some(json!({"email": "x@evil.io"})),
            ),
            (
                Method::DELETE,
                format!("{ta}/invitations/{}", f.a_invitation),
                None,
            ),
            (Method::GET, format!("{ta}/api-keys"), None),
            (
                Method::POST,
                format!("{ta}/api-keys"),
                Some(json!({"name": "evil"})),
            ),
            (
                Method::DELETE,
                format!("{ta}/api-keys/{}", f.a_key_id),
                None,
            ),
            (Method::GET, format!("{ta}/credentials"), None),
            (
                Method::POST,
                format!("{ta}/credentials"),
                Some(cred.clone()),
            ),
            (
                Method::GET,
                format!("{ta}/credentials/{}", f.a_credential),
                None,
            ),
            (
                Method::PATCH,
                format!("{ta}/credentials/{}", f.a_credential),
                Some(json!({"label": "pwned"})),
            ),
            (
                Method::DELETE,
                format!("{ta}/credentials/{}", f.a_credential),
                None,
            ),
            (Method::GET, format!("{ta}/audit-log"), None),
        ]);
    }
    // B's own tenant path with A's object ids.
    all.extend([
        (
            Method::PATCH,
            format!("{tb}/members/{}", f.a.user_id),
            Some(json!({"role": "viewer"})),
        ),
        (
            Method::DELETE,
            format!("{tb}/members/{}", f.a.user_id),
            None,
        ),
        (
            Method::DELETE,
            format!("{tb}/invitations/{}", f.a_invitation),
            None,
        ),
        (
            Method::DELETE,
            format!("{tb}/api-keys/{}", f.a_key_id),
            None,
        ),
        (
            Method::GET,
            format!("{tb}/credentials/{}", f.a_credential),
            None,
        ),
        (
            Method::PATCH,
            format!("{tb}/credentials/{}", f.a_credential),
            Some(json!({"label": "pwned"})),
        ),
        (
            Method::DELETE,
            format!("{tb}/credentials/{}", f.a_credential),
            None,
        ),
    ]);
    all
}

#[tokio::test]
async fn second_tenant_gets_nothing_of_the_first() {
    for app in apps(
        "second_tenant_gets_nothing_of_the_first",
        Options::default(),
    )
    .await
    {
        let (f, b, b_key) = setup(&app).await;
        let secrets_of_a = [
            f.a.tenant_id.as_str(),
            f.a.slug.as_str(),
            "alice@tenant-a.io",
            "a-main",
            f.a_key_id.as_str(),
            "sk-tenant-a",
        ];
        let mut checked = 0;
        for (token_name, token) in [
            ("B's access token", b.access.as_str()),
            ("B's API key", b_key.as_str()),
        ] {
            for (method, path, body) in requests(&f, &b) {
                let reply = app.call(method.clone(), &path, Some(token), body).await;
                assert!(
                    matches!(reply.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
                    "{token_name} {method} {path}: {} {}",
                    reply.status,
                    reply.text
                );
                // The path itself names A; the answer must add nothing of A's.
                for secret in secrets_of_a {
                    if !path.contains(secret) {
                        assert!(
                            !reply.text.contains(secret),
                            "{token_name} {method} {path} leaked {secret}: {}",
                            reply.text
                        );
                    }
                }
                checked += 1;
            }
        }
        println!("{}: {checked} cross-tenant requests refused", app.backend);

        // A key of A cannot reach B either, and lists only show one's own tenant.
        let tb = format!("/api/v1/tenants/{}", b.slug);
        assert_eq!(app.get(&tb, &f.a_key).await.status, StatusCode::NOT_FOUND);
        let mine = app.get("/api/v1/tenants", &b.access).await;
        assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
        assert!(!mine.text.contains(&f.a.slug));

        // Nothing of A changed.
        let ta = format!("/api/v1/tenants/{}", f.a.slug);
        let tenant = app.get(&ta, &f.a.access).await;
        assert_eq!(tenant.body["name"], "Tenant A");
        assert_eq!(
            app.get(&ta, &f.a_key).await.status,
            StatusCode::OK,
            "A's key still works"
        );
        let members = app.get(&format!("{ta}/members"), &f.a.access).await;
        assert_eq!(members.body["items"][0]["role"], "owner");
        let credentials = app.get(&format!("{ta}/credentials"), &f.a.access).await;
        assert_eq!(credentials.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(credentials.body["items"][0]["label"], "a-main");
        let invitations = app.get(&format!("{ta}/invitations"), &f.a.access).await;
        assert_eq!(invitations.body["items"].as_array().unwrap().len(), 1);
        let audit = app.get(&format!("{ta}/audit-log"), &f.a.access).await;
        assert!(!audit.text.contains("bob@tenant-b.io") && !audit.text.contains(&b.user_id));
        app.finish().await;
    }
}

/// Issue 15 item 5: a company named like another tenant's id gets a slug that is not that id,
/// and a tenant key names one tenant only (a UUID is an id, anything else a slug).
#[tokio::test]
async fn a_slug_never_equals_another_tenants_id() {
    for app in apps("slug vs id", Options::default()).await {
        let a = app.signup("first@slug-a.io", "Slug A").await;
        let b = app.signup("second@slug-b.io", &a.tenant_id).await;
        assert_ne!(b.slug, a.tenant_id, "{}", app.backend);
        assert_ne!(b.tenant_id, a.tenant_id);
        // By id, each reaches its own tenant; B's key for A's id finds nothing of A.
        let by_id = app
            .get(&format!("/api/v1/tenants/{}", a.tenant_id), &a.access)
            .await;
        assert_eq!(by_id.status, StatusCode::OK);
        assert_eq!(by_id.body["name"], "Slug A");
        let cross = app
            .get(&format!("/api/v1/tenants/{}", a.tenant_id), &b.access)
            .await;
        assert!(
            matches!(cross.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
            "{}",
            cross.text
        );
        let own = app
            .get(&format!("/api/v1/tenants/{}", b.slug), &b.access)
            .await;
        assert_eq!(own.status, StatusCode::OK);
        assert_eq!(own.body["id"], b.tenant_id.as_str());
        app.finish().await;
    }
}
