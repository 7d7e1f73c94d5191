//! The tenant console's pages and files: served at `/` beside the API, every answer under the
//! strict Content-Security-Policy, unknown console files and API routes still answered with
//! the API's JSON 404.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use switchboard_gateway::http::console::{ASSETS, CONTENT_SECURITY_POLICY, PAGES};

use crate::common::{Options, apps};

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn console_pages_and_files_are_served_under_a_strict_csp() {
    for app in apps(
        "console_pages_and_files_are_served_under_a_strict_csp",
        Options::default(),
    )
    .await
    {
        // Every page route, the e-mail links with their tokens and Stripe's return URL answer
        // the single page.
        let mut pages: Vec<String> = PAGES.iter().map(|p| (*p).to_owned()).collect();
        pages.extend([
            "/verify-email?token=abc".to_owned(),
            "/invitations/accept?token=abc".to_owned(),
            "/tenants/acme/billing?session=cs_test_1".to_owned(),
            "/tenants/acme/calls/0190c0de".to_owned(),
        ]);
        for path in &pages {
            let reply = app.raw(get(path)).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
            assert_eq!(
                reply.headers[header::CONTENT_TYPE],
                "text/html; charset=utf-8",
                "{path}"
            );
            assert_eq!(
                reply.headers[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY,
                "{path}"
            );
            assert_eq!(reply.headers[header::X_FRAME_OPTIONS], "DENY");
            assert_eq!(reply.headers[header::REFERRER_POLICY], "no-referrer");
            assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert!(
                reply
                    .text
                    .contains(r#"<script type="module" src="/console/js/app.js"></script>"#),
                "{path}: {}",
                reply.text
            );
        }
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        // Recordings play from an object URL of bytes fetched with the bearer token; media
        // from any other origin stays refused.
        assert!(CONTENT_SECURITY_POLICY.contains("media-src 'self' blob:;"));
        assert!(!CONTENT_SECURITY_POLICY.contains('*'));

        for (path, content_type, body) in ASSETS {
            let reply = app.raw(get(&format!("/console/{path}"))).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
            assert_eq!(reply.headers[header::CONTENT_TYPE], *content_type, "{path}");
            assert_eq!(
                reply.headers[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(reply.text, *body, "{path}");
        }

        // Unknown files and routes keep the API's JSON error.
        for path in [
            "/console/js/missing.js",
            "/console/../Cargo.toml",
            "/api/v1/nope",
            "/verify-emailx",
        ] {
            let reply = app.raw(get(path)).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(reply.body["error"]["code"], "not_found", "{path}");
        }
        let reply = app
            .raw(
                Request::builder()
                    .method(Method::POST)
                    .uri("/")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        app.finish().await;
    }
}
