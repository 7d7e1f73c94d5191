//! Members, roles and invitations, with roles enforced on every route.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::{Account, Options, TestApp, apps};

async fn verified(app: &TestApp, email: &str, company: &str) -> Account {
    let account = app.signup(email, company).await;
    let token = app.mailed_token(email);
    let reply = app
        .post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    account
}

async fn invite_and_join(app: &TestApp, owner: &Account, who: &Account, role: &str) {
    let path = format!("/api/v1/tenants/{}/invitations", owner.slug);
    let invited = app
        .post(
            &path,
            Some(&owner.access),
            json!({"email": who.email, "role": role}),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.text);
    assert!(
        !invited.text.contains("token"),
        "the invitation token only goes by mail"
    );
    let token = app.mailed_token(&who.email);
    let accepted = app
        .post(
            "/api/v1/invitations/accept",
            Some(&who.access),
            json!({"token": token}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    assert_eq!(accepted.body["role"], role);
}

#[tokio::test]
async fn roles_are_enforced_on_every_route() {
    for app in apps("roles_are_enforced_on_every_route", Options::default()).await {
        let owner = verified(&app, "owner@acme.io", "Acme").await;
        let bob = verified(&app, "bob@acme.io", "Bob Side Project").await;
        let vic = verified(&app, "vic@acme.io", "Vic Side Project").await;
        invite_and_join(&app, &owner, &bob, "member").await;
        invite_and_join(&app, &owner, &vic, "viewer").await;
        let t = format!("/api/v1/tenants/{}", owner.slug);

        let members = app.get(&format!("{t}/members"), &vic.access).await;
        assert_eq!(members.status, StatusCode::OK);
        assert_eq!(members.body["items"].as_array().unwrap().len(), 3);

        // (path, method, body, minimum role) — checked for viewer, member and owner.
        let checks: Vec<(String, &str, Option<serde_json::Value>, u8)> = vec![
            (t.clone(), "GET", None, 0),
            (format!("{t}/members"), "GET", None, 0),
            (format!("{t}/credentials"), "GET", None, 1),
            (t.clone(), "PATCH", Some(json!({"name": "Acme Renamed"})), 2),
            (format!("{t}/api-keys"), "GET", None, 2),
            (format!("{t}/invitations"), "GET", None, 2),
            (format!("{t}/audit-log"), "GET", None, 2),
            (
                format!("{t}/api-keys"),
                "POST",
                Some(json!({"name": "k"})),
                2,
            ),
            (
                format!("{t}/credentials"),
                "POST",
                Some(
                    json!({"provider": "openai", "label": "x", "secret": "sk-abcdefghijklmnopqrstuvwxyz"}),
                ),
                2,
            ),
            (
                format!("{t}/invitations"),
                "POST",
                Some(json!({"email": "new@acme.io"})),
                2,
            ),
        ];
        for (level, who) in [(0u8, &vic), (1, &bob), (3, &owner)] {
            for (path, method, body, minimum) in &checks {
                let method = axum::http::Method::from_bytes(method.as_bytes()).unwrap();
                let reply = app
                    .call(method.clone(), path, Some(&who.access), body.clone())
                    .await;
                if level >= *minimum {
                    assert!(
                        reply.status.is_success(),
                        "level {level} {method} {path}: {}",
                        reply.text
                    );
                } else {
                    assert_eq!(
                        reply.status,
                        StatusCode::FORBIDDEN,
                        "level {level} {method} {path}: {}",
                        reply.text
                    );
                    assert_eq!(reply.body["error"]["code"], "forbidden");
                }
            }
        }

        // Promote bob to admin; an admin cannot make anyone owner.
        let promote = app
            .patch(
                &format!("{t}/members/{}", bob.user_id),
                &owner.access,
                json!({"role": "admin"}),
            )
            .await;
        assert_eq!(promote.status, StatusCode::OK, "{}", promote.text);
        assert_eq!(promote.body["role"], "admin");
        let self_owner = app
            .patch(
                &format!("{t}/members/{}", bob.user_id),
                &bob.access,
                json!({"role": "owner"}),
            )
            .await;
        assert_eq!(self_owner.status, StatusCode::FORBIDDEN);
        let demote_owner = app
            .patch(
                &format!("{t}/members/{}", owner.user_id),
                &bob.access,
                json!({"role": "viewer"}),
            )
            .await;
        assert_eq!(demote_owner.status, StatusCode::FORBIDDEN);
        let invite_owner = app
            .post(
                &format!("{t}/invitations"),
                Some(&bob.access),
                json!({"email": "x@acme.io", "role": "owner"}),
            )
            .await;
        assert_eq!(invite_owner.status, StatusCode::FORBIDDEN);
        let bad_role = app
            .patch(
                &format!("{t}/members/{}", vic.user_id),
                &owner.access,
                json!({"role": "god"}),
            )
            .await;
        assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad_role.body["error"]["field"], "role");

        // The last owner can neither leave nor be demoted.
        let leave = app
            .delete(&format!("{t}/members/{}", owner.user_id), &owner.access)
            .await;
        assert_eq!(leave.status, StatusCode::CONFLICT);
        assert_eq!(leave.body["error"]["code"], "last_owner");
        let demote_self = app
            .patch(
                &format!("{t}/members/{}", owner.user_id),
                &owner.access,
                json!({"role": "admin"}),
            )
            .await;
        assert_eq!(demote_self.status, StatusCode::CONFLICT);

        // Viewers may leave on their own; afterwards the tenant is gone for them.
        let vic_leaves = app
            .delete(&format!("{t}/members/{}", vic.user_id), &vic.access)
            .await;
        assert_eq!(vic_leaves.status, StatusCode::NO_CONTENT);
        assert_eq!(app.get(&t, &vic.access).await.status, StatusCode::NOT_FOUND);
        // An admin removes a member.
        let removed = app
            .delete(&format!("{t}/members/{}", bob.user_id), &owner.access)
            .await;
        assert_eq!(removed.status, StatusCode::NO_CONTENT);
        assert_eq!(app.get(&t, &bob.access).await.status, StatusCode::NOT_FOUND);

        // The audit log recorded the security-relevant actions.
        let audit = app.get(&format!("{t}/audit-log"), &owner.access).await;
        let actions: Vec<&str> = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for expected in [
            "tenant.created",
            "invitation.created",
            "invitation.accepted",
            "member.role_changed",
            "member.removed",
        ] {
            assert!(
                actions.contains(&expected),
                "{expected} missing from {actions:?}"
            );
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn invitations_need_the_invited_verified_address() {
    for app in apps(
        "invitations_need_the_invited_verified_address",
        Options::default(),
    )
    .await
    {
        let owner = verified(&app, "owner@beta.io", "Beta").await;
        let t = format!("/api/v1/tenants/{}", owner.slug);
        let invited = app
            .post(
                &format!("{t}/invitations"),
                Some(&owner.access),
                json!({"email": "Zed@Beta.io"}),
            )
            .await;
        assert_eq!(invited.status, StatusCode::CREATED);
        assert_eq!(invited.body["email"], "zed@beta.io");
        assert_eq!(invited.body["role"], "member");
        let token = app.mailed_token("zed@beta.io");

        // Someone else cannot use it.
        let mallory = verified(&app, "mallory@evil.io", "Evil").await;
        let stolen = app
            .post(
                "/api/v1/invitations/accept",
                Some(&mallory.access),
                json!({"token": token}),
            )
            .await;
        assert_eq!(stolen.status, StatusCode::FORBIDDEN);
        // The invited address, unverified, cannot either.
        let zed = app.signup("zed@beta.io", "Zed Co").await;
        let unverified = app
            .post(
                "/api/v1/invitations/accept",
                Some(&zed.access),
                json!({"token": token}),
            )
            .await;
        assert_eq!(unverified.status, StatusCode::FORBIDDEN);
        assert_eq!(unverified.body["error"]["code"], "email_not_verified");
        let verify = app.mailed_token("zed@beta.io");
        assert_eq!(
            app.post("/api/v1/auth/verify-email", None, json!({"token": verify}))
                .await
                .status,
            StatusCode::OK
        );
        let ok = app
            .post(
                "/api/v1/invitations/accept",
                Some(&zed.access),
                json!({"token": token}),
            )
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
        let twice = app
            .post(
                "/api/v1/invitations/accept",
                Some(&zed.access),
                json!({"token": token}),
            )
            .await;
        assert_eq!(twice.status, StatusCode::BAD_REQUEST);
        let me = app.get("/api/v1/auth/me", &zed.access).await;
        assert_eq!(me.body["tenants"].as_array().unwrap().len(), 2);

        // Revoked invitations cannot be accepted; inviting a member again is a conflict.
        let again = app
            .post(
                &format!("{t}/invitations"),
                Some(&owner.access),
                json!({"email": "zed@beta.io"}),
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        let second = app
            .post(
                &format!("{t}/invitations"),
                Some(&owner.access),
                json!({"email": "yan@beta.io", "role": "viewer"}),
            )
            .await;
        let id = second.body["id"].as_str().unwrap().to_owned();
        let pending = app.get(&format!("{t}/invitations"), &owner.access).await;
        assert_eq!(pending.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(
            app.delete(&format!("{t}/invitations/{id}"), &owner.access)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        let yan = verified(&app, "yan@beta.io", "Yan Co").await;
        let invitation_token = app
            .mailer
            .sent()
            .into_iter()
            .rev()
            .find(|m| m.to == "yan@beta.io" && m.subject.starts_with("Join"))
            .unwrap();
        let start = invitation_token.body.find("token=").unwrap() + 6;
        let token = invitation_token.body[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        let revoked = app
            .post(
                "/api/v1/invitations/accept",
                Some(&yan.access),
                json!({"token": token}),
            )
            .await;
        assert_eq!(revoked.status, StatusCode::BAD_REQUEST);
        let garbage = app
            .post(
                "/api/v1/invitations/accept",
                Some(&yan.access),
                json!({"token": "a.b.c"}),
            )
            .await;
        assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
        app.finish().await;
    }
}

/// Issue 15 item 6: two owners demoting each other at the same moment. The owner count is
/// taken under the tenant's lock (Postgres) or the write lock (SQLite), so the second demotion
/// waits for the first, sees one owner left and is refused: the tenant keeps an owner.
#[tokio::test]
async fn two_owners_demoting_each_other_at_once_leave_one_owner() {
    use switchboard_gateway::store::{Scope, tenants};
    for app in apps("owner race", Options::default()).await {
        let first = verified(&app, "first@race.io", "Race").await;
        let second = verified(&app, "second@race.io", "Race Two").await;
        invite_and_join(&app, &first, &second, "owner").await;
        let store = app.state.store.clone();
        let tenant_id = first.tenant_id.clone();
        // The first owner's request: counts two owners, demotes the second, not committed yet.
        let mut demote_second = store.write(&Scope::tenant(&tenant_id)).await.unwrap();
        let owners = tenants::count_owners(&mut demote_second, &tenant_id)
            .await
            .unwrap();
        assert_eq!(owners, 2);
        sqlx::query("UPDATE memberships SET role = 'admin' WHERE tenant_id = $1 AND user_id = $2")
            .bind(&tenant_id)
            .bind(&second.user_id)
            .execute(&mut *demote_second)
            .await
            .unwrap();
        // The second owner's request, at the same moment: its count must wait for the first.
        let demote_first = tokio::spawn({
            let (store, tenant_id) = (store.clone(), tenant_id.clone());
            async move {
                let mut tx = store.write(&Scope::tenant(&tenant_id)).await.unwrap();
                let owners = tenants::count_owners(&mut tx, &tenant_id).await.unwrap();
                tx.rollback().await.unwrap();
                owners
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !demote_first.is_finished(),
            "{}: the second count did not wait for the first demotion",
            app.backend
        );
        demote_second.commit().await.unwrap();
        assert_eq!(demote_first.await.unwrap(), 1, "{}", app.backend);
        // Over HTTP the remaining owner cannot be demoted.
        let t = format!("/api/v1/tenants/{}", first.slug);
        let last = app
            .patch(
                &format!("{t}/members/{}", first.user_id),
                &first.access,
                json!({"role": "admin"}),
            )
            .await;
        assert_eq!(last.status, StatusCode::CONFLICT, "{}", last.text);
        app.finish().await;
    }
}

/// Issue 15 item 4: an API key stops working when its creator is removed from the tenant,
/// and a password reset revokes every key the account minted (in every tenant).
#[tokio::test]
async fn api_keys_die_with_their_creators_membership_and_on_password_reset() {
    for app in apps("key lifetime", Options::default()).await {
        let owner = verified(&app, "boss@keys.io", "Keys").await;
        let bob = verified(&app, "bob@keys.io", "Bob Co").await;
        invite_and_join(&app, &owner, &bob, "admin").await;
        let t = format!("/api/v1/tenants/{}", owner.slug);
        let mint = |who: &Account, path: String| {
            let access = who.access.clone();
            let app = &app;
            async move {
                let key = app
                    .post(
                        &format!("{path}/api-keys"),
                        Some(&access),
                        json!({"name": "k", "scopes": ["admin"]}),
                    )
                    .await;
                assert_eq!(key.status, StatusCode::CREATED, "{}", key.text);
                key.body["key"].as_str().unwrap().to_owned()
            }
        };
        let bobs_key = mint(&bob, t.clone()).await;
        let owners_key = mint(&owner, t.clone()).await;
        assert_eq!(app.get(&t, &bobs_key).await.status, StatusCode::OK);
        let removed = app
            .delete(&format!("{t}/members/{}", bob.user_id), &owner.access)
            .await;
        assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
        assert_eq!(
            app.get(&t, &bobs_key).await.status,
            StatusCode::UNAUTHORIZED,
            "{}: a removed member's key still works",
            app.backend
        );
        assert_eq!(app.get(&t, &owners_key).await.status, StatusCode::OK);

        // Bob's own tenant: a key minted there dies with a password reset of his account.
        let bt = format!("/api/v1/tenants/{}", bob.slug);
        let own_key = mint(&bob, bt.clone()).await;
        assert_eq!(app.get(&bt, &own_key).await.status, StatusCode::OK);
        let requested = app
            .post(
                "/api/v1/auth/password-reset",
                None,
                json!({"email": "bob@keys.io"}),
            )
            .await;
        assert_eq!(requested.status, StatusCode::ACCEPTED);
        let token = app.mailed_token("bob@keys.io");
        let done = app
            .post(
                "/api/v1/auth/password-reset/confirm",
                None,
                json!({"token": token, "password": "an entirely new passphrase 42"}),
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text);
        assert_eq!(
            app.get(&bt, &own_key).await.status,
            StatusCode::UNAUTHORIZED,
            "{}: a key minted before the reset still works",
            app.backend
        );
        assert_eq!(app.get(&t, &owners_key).await.status, StatusCode::OK);
        app.finish().await;
    }
}

/// Issue 15 item 12: webhook endpoints created and deleted, CDR credentials rotated, logins
/// and password resets are in the tenant's audit log.
#[tokio::test]
async fn security_relevant_actions_are_audited() {
    for app in apps("audit", Options::default()).await {
        let owner = verified(&app, "audit@audit.io", "Audited").await;
        let t = format!("/api/v1/tenants/{}", owner.slug);
        let hook = app
            .post(
                &format!("{t}/webhooks"),
                Some(&owner.access),
                json!({"url": "https://hooks.example.com/in?token=secret-in-query"}),
            )
            .await;
        assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text);
        let id = hook.body["id"].as_str().unwrap();
        let deleted = app
            .delete(&format!("{t}/webhooks/{id}"), &owner.access)
            .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        let rotated = app
            .post(
                &format!("{t}/cdr-credentials"),
                Some(&owner.access),
                json!({}),
            )
            .await;
        assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.text);
        let login = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "audit@audit.io", "password": "correct horse battery staple"}),
            )
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text);
        app.post(
            "/api/v1/auth/password-reset",
            None,
            json!({"email": "audit@audit.io"}),
        )
        .await;
        let token = app.mailed_token("audit@audit.io");
        let reset = app
            .post(
                "/api/v1/auth/password-reset/confirm",
                None,
                json!({"token": token, "password": "another long passphrase 77"}),
            )
            .await;
        assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
        let login = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "audit@audit.io", "password": "another long passphrase 77"}),
            )
            .await;
        let access = login.body["tokens"]["accessToken"].as_str().unwrap();
        let audit = app.get(&format!("{t}/audit-log"), access).await;
        assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
        let actions: Vec<&str> = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for expected in [
            "webhook_endpoint.created",
            "webhook_endpoint.deleted",
            "cdr_credential.rotated",
            "user.login",
            "user.password_reset",
        ] {
            assert!(
                actions.contains(&expected),
                "{}: {expected} missing from {actions:?}",
                app.backend
            );
        }
        assert!(
            !audit.text.contains("secret-in-query"),
            "the URL's query is not logged"
        );
        app.finish().await;
    }
}
