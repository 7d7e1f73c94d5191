//! The tenant console: a static single-page application (plain HTML, ES modules and CSS from
//! `gateway/console/`, no framework and no build step) compiled into the binary with
//! `include_str!`, so `cargo build` is all it takes and both modes serve it at `/`.
//!
//! * The page routes ([`PAGES`], and everything under `/tenants/`) answer the one
//!   `index.html`; the script reads the path and renders the page. The e-mail links
//!   (`/verify-email`, `/reset-password`, `/invitations/accept`) and Stripe's return URLs
//!   (`/tenants/{slug}/billing`) land here.
//! * Assets are under `/console/` ([`ASSETS`]).
//!
//! The console talks to the JSON API with the same bearer tokens as any client (kept in the
//! tab's `sessionStorage`), so no cookie authenticates anything and there is nothing for a
//! cross-site request to ride on: no CSRF token is needed. Every answer carries a strict
//! Content-Security-Policy (scripts, styles and connections from this origin only, media from
//! it or from object URLs of what it served, no inline script or style, no framing, no
//! referrer: the e-mailed tokens in the URL never leak).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::errors::ApiError;
use crate::state::AppState;

/// The Content-Security-Policy of every console answer.
///
/// `media-src` admits `blob:` besides the origin: a recording is fetched with the session's
/// bearer token (an `<audio>` element cannot send one) and played from an object URL of the
/// fetched bytes, which `'self'` does not cover.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Paths that answer the console's page (besides everything under `/tenants/`).
pub const PAGES: &[&str] = &[
    "/",
    "/login",
    "/signup",
    "/verify-email",
    "/reset-password",
    "/invitations/accept",
    "/tenants",
];

macro_rules! asset {
    ($path:literal, $type:expr) => {
        ($path, $type, include_str!(concat!("../../console/", $path)))
    };
}

/// The console's files under `/console/`: (path below `/console/`, content type, content).
pub const ASSETS: &[(&str, &str, &str)] = &[
    asset!("style.css", "text/css"),
    asset!("js/api.js", JS),
    asset!("js/ui.js", JS),
    asset!("js/app.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/g711.js", JS),
    asset!("js/test-call.js", JS),
    asset!("js/capture-worklet.js", JS),
    asset!("js/pages/onboarding.js", JS),
    asset!("js/pages/numbers.js", JS),
    asset!("js/pages/agent.js", JS),
    asset!("js/pages/calls.js", JS),
    asset!("js/pages/usage.js", JS),
    asset!("js/pages/campaigns.js", JS),
    asset!("js/pages/team.js", JS),
    asset!("js/pages/developers.js", JS),
    asset!("js/pages/audit.js", JS),
];

const JS: &str = "text/javascript; charset=utf-8";

const INDEX: &str = include_str!("../../console/index.html");

/// The console's routes: its pages and `/console/{*path}`.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new()
        .route("/tenants/{*rest}", get(page))
        .route("/console/{*path}", get(file));
    for path in PAGES {
        router = router.route(path, get(page));
    }
    router
}

/// The single page (every console route).
async fn page() -> Response {
    with_security_headers(
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            INDEX,
        )
            .into_response(),
    )
}

/// One asset, or the API's 404.
async fn file(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, body)) => with_security_headers(
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, *content_type),
                    // Revalidated on every load: a new gateway version serves new files.
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                *body,
            )
                .into_response(),
        ),
        None => ApiError::not_found("console file").into_response(),
    }
}

fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `gateway/console/` is served, so none is forgotten in [`ASSETS`].
    #[test]
    fn every_console_file_is_an_asset() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut found = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let relative = path
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    if relative != "index.html" {
                        found.push(relative);
                    }
                }
            }
        }
        found.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|(p, _, _)| (*p).to_owned()).collect();
        served.sort();
        assert_eq!(found, served);
    }

    /// No inline script, style or handler (the CSP forbids them, so they would silently not
    /// run), and no HTML built from strings (text from the API is always inserted as text).
    #[test]
    fn no_inline_script_or_handler() {
        assert!(!INDEX.contains("<script>"));
        assert!(!INDEX.contains(" style="));
        assert!(!INDEX.contains(" onclick="));
        for (path, _, body) in ASSETS {
            for banned in [
                ".innerHTML",
                ".outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!body.contains(banned), "{path} uses {banned}");
            }
        }
    }
}
