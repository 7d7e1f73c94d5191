//! Signup, login, refresh rotation, logout, me, e-mail verification, password reset, tokens.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::common::{Options, apps};

#[tokio::test]
async fn signup_creates_user_tenant_owner_agent_and_tokens() {
    for app in apps(
        "signup_creates_user_tenant_owner_agent_and_tokens",
        Options::default(),
    )
    .await
    {
        let reply = app
            .post(
                "/api/v1/auth/signup",
                None,
                json!({
                    "email": " Alice@Example.COM ", "password": "correct horse battery staple",
                    "name": "Alice", "company": "Acme Voice, Inc."
                }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let body = &reply.body;
        assert_eq!(body["user"]["email"], "alice@example.com");
        assert_eq!(body["user"]["emailVerified"], false);
        assert_eq!(body["tenant"]["slug"], "acme-voice-inc");
        assert_eq!(body["tenant"]["namespace"], "tenant-acme-voice-inc");
        assert_eq!(body["tenant"]["role"], "owner");
        assert_eq!(body["tenant"]["plan"], "free");
        assert_eq!(body["tenant"]["agent"]["language"], "en-US");
        assert_eq!(body["tokens"]["tokenType"], "Bearer");
        assert!(
            !reply.text.contains("argon2"),
            "the password hash must never be returned"
        );
        let access = body["tokens"]["accessToken"].as_str().unwrap();

        let me = app.get("/api/v1/auth/me", access).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text);
        assert_eq!(me.body["tenants"][0]["slug"], "acme-voice-inc");
        assert_eq!(me.body["tenants"][0]["role"], "owner");

        // Same company again: the slug is de-duplicated.
        let second = app.signup("bob@example.com", "Acme Voice, Inc.").await;
        assert_eq!(second.slug, "acme-voice-inc-2");
        let third = app.signup("carol@example.com", "ACME voice inc").await;
        assert_eq!(third.slug, "acme-voice-inc-3");

        // A verification e-mail was sent; its token verifies the address once.
        let token = app.mailed_token("alice@example.com");
        let verified = app
            .post("/api/v1/auth/verify-email", None, json!({"token": token}))
            .await;
        assert_eq!(verified.status, StatusCode::OK, "{}", verified.text);
        let again = app
            .post("/api/v1/auth/verify-email", None, json!({"token": token}))
            .await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
        assert_eq!(again.body["error"]["field"], "token");
        let me = app.get("/api/v1/auth/me", access).await;
        assert_eq!(me.body["user"]["emailVerified"], true);
        app.finish().await;
    }
}

#[tokio::test]
async fn login_refresh_rotation_reuse_detection_and_logout() {
    for app in apps(
        "login_refresh_rotation_reuse_detection_and_logout",
        Options::default(),
    )
    .await
    {
        let account = app.signup("dave@example.com", "Dave Co").await;
        let wrong = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "dave@example.com", "password": "not the password"}),
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.body["error"]["code"], "invalid_credentials");
        let unknown = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "nobody@example.com", "password": "whatever it is"}),
            )
            .await;
        assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            unknown.body["error"]["code"], "invalid_credentials",
            "unknown accounts look the same"
        );

        let login = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "DAVE@example.com", "password": "correct horse battery staple"}),
            )
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text);
        let access = login.body["tokens"]["accessToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let r1 = login.body["tokens"]["refreshToken"]
            .as_str()
            .unwrap()
            .to_owned();

        // Rotation: r1 → r2 → r3, each single-use.
        let refreshed = app
            .post("/api/v1/auth/refresh", None, json!({"refreshToken": r1}))
            .await;
        assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
        let r2 = refreshed.body["refreshToken"].as_str().unwrap().to_owned();
        assert_ne!(r1, r2);
        let new_access = refreshed.body["accessToken"].as_str().unwrap().to_owned();
        assert_eq!(
            app.get("/api/v1/auth/me", &new_access).await.status,
            StatusCode::OK
        );

        // Reusing r1 is theft: 401, and the whole session (r2 and its access tokens) dies.
        let reuse = app
            .post("/api/v1/auth/refresh", None, json!({"refreshToken": r1}))
            .await;
        assert_eq!(reuse.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reuse.body["error"]["code"], "refresh_token_reused");
        let after = app
            .post("/api/v1/auth/refresh", None, json!({"refreshToken": r2}))
            .await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED);
        let revoked = app.get("/api/v1/auth/me", &access).await;
        assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
        assert_eq!(revoked.body["error"]["code"], "session_revoked");

        // The signup session is separate and still alive; logout ends it.
        assert_eq!(
            app.get("/api/v1/auth/me", &account.access).await.status,
            StatusCode::OK
        );
        let logout = app
            .call(
                axum::http::Method::POST,
                "/api/v1/auth/logout",
                Some(&account.access),
                None,
            )
            .await;
        assert_eq!(logout.status, StatusCode::NO_CONTENT);
        assert_eq!(
            app.get("/api/v1/auth/me", &account.access).await.status,
            StatusCode::UNAUTHORIZED
        );
        let refresh_after_logout = app
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({"refreshToken": account.refresh}),
            )
            .await;
        assert_eq!(refresh_after_logout.status, StatusCode::UNAUTHORIZED);

        // Garbage refresh tokens.
        for token in [
            "",
            "abc",
            "x.y",
            "00000000-0000-0000-0000-000000000000.secret",
        ] {
            let reply = app
                .post("/api/v1/auth/refresh", None, json!({"refreshToken": token}))
                .await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token}");
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn bad_access_tokens_are_refused() {
    for app in apps("bad_access_tokens_are_refused", Options::default()).await {
        let account = app.signup("erin@example.com", "Erin Co").await;
        let now = chrono::Utc::now().timestamp();
        let session = {
            let payload = account.access.split('.').nth(1).unwrap();
            let claims: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
            claims["sid"].as_str().unwrap().to_owned()
        };
        // Expired (signed correctly, for a live session).
        let expired = app
            .state
            .tokens
            .issue(&account.user_id, &session, now - 7200)
            .unwrap();
        // Wrong signature: same kid header, different secret.
        let other = switchboard_gateway::tokens::TokenService::new(
            b"a-completely-different-secret-0123456789",
            &[],
            "https://gateway.test",
            900,
        );
        let foreign = other.issue(&account.user_id, &session, now).unwrap();
        let mut parts: Vec<&str> = account.access.split('.').collect();
        let forged_sig = foreign.split('.').nth(2).unwrap().to_owned();
        parts[2] = &forged_sig;
        let wrong_signature = parts.join(".");
        // alg: none.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = account.access.split('.').nth(1).unwrap();
        let alg_none = format!("{header}.{payload}.");
        // Wrong audience, correctly signed with the real secret.
        let claims = json!({"sub": account.user_id, "sid": session, "iss": "https://gateway.test", "aud": "some-other-api", "iat": now, "exp": now + 600});
        let kid = {
            let h = account.access.split('.').next().unwrap();
            let h: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
            h["kid"].as_str().unwrap().to_owned()
        };
        let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        jwt_header.kid = Some(kid);
        let wrong_audience = jsonwebtoken::encode(
            &jwt_header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(crate::common::JWT_SECRET.as_bytes()),
        )
        .unwrap();
        for (name, token) in [
            ("expired", expired),
            ("wrong signature", wrong_signature),
            ("alg none", alg_none),
            ("wrong audience", wrong_audience),
            ("garbage", "not-a-jwt".to_owned()),
        ] {
            let reply = app.get("/api/v1/auth/me", &token).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{name}: {}",
                reply.text
            );
            assert!(reply.headers.contains_key("www-authenticate"), "{name}");
        }
        let missing = app
            .call(axum::http::Method::GET, "/api/v1/auth/me", None, None)
            .await;
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
        assert_eq!(missing.body["error"]["code"], "unauthenticated");
        app.finish().await;
    }
}

#[tokio::test]
async fn password_reset_sets_a_new_password_and_ends_sessions() {
    for app in apps(
        "password_reset_sets_a_new_password_and_ends_sessions",
        Options::default(),
    )
    .await
    {
        let account = app.signup("frank@example.com", "Frank Co").await;
        // Unknown addresses get the same answer and no mail.
        let unknown = app
            .post(
                "/api/v1/auth/password-reset",
                None,
                json!({"email": "ghost@example.com"}),
            )
            .await;
        assert_eq!(unknown.status, StatusCode::ACCEPTED);
        assert!(
            app.mailer
                .sent()
                .iter()
                .all(|m| m.to != "ghost@example.com")
        );

        let requested = app
            .post(
                "/api/v1/auth/password-reset",
                None,
                json!({"email": "frank@example.com"}),
            )
            .await;
        assert_eq!(requested.status, StatusCode::ACCEPTED);
        let token = app.mailed_token("frank@example.com");
        let weak = app
            .post(
                "/api/v1/auth/password-reset/confirm",
                None,
                json!({"token": token, "password": "short"}),
            )
            .await;
        assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(weak.body["error"]["field"], "password");
        // The failed attempt did not use up the token.
        let done = app
            .post(
                "/api/v1/auth/password-reset/confirm",
                None,
                json!({"token": token, "password": "a brand new passphrase"}),
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text);
        let reused = app
            .post(
                "/api/v1/auth/password-reset/confirm",
                None,
                json!({"token": token, "password": "another new passphrase"}),
            )
            .await;
        assert_eq!(reused.status, StatusCode::BAD_REQUEST);

        assert_eq!(
            app.get("/api/v1/auth/me", &account.access).await.status,
            StatusCode::UNAUTHORIZED,
            "old sessions end"
        );
        let old = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "frank@example.com", "password": "correct horse battery staple"}),
            )
            .await;
        assert_eq!(old.status, StatusCode::UNAUTHORIZED);
        let new = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "frank@example.com", "password": "a brand new passphrase"}),
            )
            .await;
        assert_eq!(new.status, StatusCode::OK);
        app.finish().await;
    }
}
