//! Bad input answers 4xx with a JSON body naming the field, never a 500, and leaves nothing
//! half-created.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::common::{Options, apps};

fn signup_body(email: &str, password: &str) -> serde_json::Value {
    json!({"email": email, "password": password, "name": "N", "company": "Dup Co"})
}

#[tokio::test]
async fn bad_signups_name_the_field() {
    for app in apps("bad_signups_name_the_field", Options::default()).await {
        let cases = [
            (
                json!({"email": "x@y.io", "password": "correct horse battery", "name": "N", "company": "C", "admin": true}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_field",
                "admin",
            ),
            (
                json!({"email": "x@y.io", "password": "correct horse battery", "name": "N"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing_field",
                "company",
            ),
            (
                json!({"email": 5, "password": "correct horse battery", "name": "N", "company": "C"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "email",
            ),
            (
                signup_body("not-an-email", "correct horse battery"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_email",
                "email",
            ),
            (
                signup_body("x@y.io", "short"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "weak_password",
                "password",
            ),
            (
                signup_body("x@y.io", "password123"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "weak_password",
                "password",
            ),
            (
                json!({"email": "x@y.io", "password": "correct horse battery", "name": "  ", "company": "C"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "required",
                "name",
            ),
            (
                json!({"email": "x@y.io", "password": "correct horse battery", "name": "N", "company": "c".repeat(101)}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_long",
                "company",
            ),
        ];
        for (body, status, code, field) in cases {
            let reply = app.post("/api/v1/auth/signup", None, body.clone()).await;
            assert_eq!(reply.status, status, "{body}: {}", reply.text);
            assert_eq!(reply.body["error"]["code"], code, "{body}: {}", reply.text);
            assert_eq!(
                reply.body["error"]["field"], field,
                "{body}: {}",
                reply.text
            );
            assert!(
                reply.body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }

        // Malformed JSON, wrong content type, empty body.
        let malformed = app
            .raw(
                Request::post("/api/v1/auth/signup")
                    .header("content-type", "application/json")
                    .body(Body::from("{\"email\": "))
                    .unwrap(),
            )
            .await;
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
        assert_eq!(malformed.body["error"]["code"], "invalid_json");
        let not_json = app
            .raw(
                Request::post("/api/v1/auth/signup")
                    .header("content-type", "text/plain")
                    .body(Body::from("hi"))
                    .unwrap(),
            )
            .await;
        assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(not_json.body["error"]["code"], "unsupported_media_type");
        let array = app.post("/api/v1/auth/signup", None, json!([1, 2])).await;
        assert!(array.status.is_client_error(), "{}", array.text);
        assert!(array.body["error"]["code"].is_string());

        // Duplicate signup: 409 on the e-mail, and no tenant was left behind (the next
        // signup with the same company still gets the undecorated slug).
        let first = app.post("/api/v1/auth/signup", None, json!({"email": "dup@example.com", "password": "correct horse battery", "name": "N", "company": "First Co"})).await;
        assert_eq!(first.status, StatusCode::CREATED);
        let duplicate = app
            .post(
                "/api/v1/auth/signup",
                None,
                signup_body("DUP@example.com", "correct horse battery"),
            )
            .await;
        assert_eq!(duplicate.status, StatusCode::CONFLICT);
        assert_eq!(duplicate.body["error"]["code"], "email_taken");
        assert_eq!(duplicate.body["error"]["field"], "email");
        let fresh = app
            .post(
                "/api/v1/auth/signup",
                None,
                signup_body("other@example.com", "correct horse battery"),
            )
            .await;
        assert_eq!(fresh.status, StatusCode::CREATED);
        assert_eq!(
            fresh.body["tenant"]["slug"], "dup-co",
            "the failed signup must not have created a tenant"
        );

        // Unknown routes and methods answer in the same shape.
        let missing = app
            .call(axum::http::Method::GET, "/api/v1/nope", None, None)
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.body["error"]["code"], "not_found");
        let method = app
            .call(axum::http::Method::DELETE, "/api/v1/auth/login", None, None)
            .await;
        assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(method.body["error"]["code"], "method_not_allowed");
        app.finish().await;
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let options = Options {
        body_limit: 1024,
        ..Options::default()
    };
    for app in apps("oversized_bodies_are_refused", options).await {
        let big = "x".repeat(4096);
        let reply = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "a@b.io", "password": big}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            reply.text
        );
        assert_eq!(reply.body["error"]["code"], "body_too_large");
        app.finish().await;
    }
}
