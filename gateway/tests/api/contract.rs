//! The API contract over real answers: camelCase fields everywhere, and every list is
//! `{"items": [...], "nextCursor": …}` paged with `?cursor=` and `?limit=`.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{Options, TestApp, apps};

/// Object keys whose values are data, not API fields (vendor metadata, audit details, the
/// contact's own CSV columns): their keys are not checked.
const DATA_MAPS: &[&str] = &["metadata", "details", "variables", "answers"];

/// Every key of `value` (recursively) that is not camelCase, with its path.
fn snake_keys(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let camel = key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && key.chars().all(|c| c.is_ascii_alphanumeric());
                if !camel {
                    out.push(format!("{path}.{key}"));
                }
                if !DATA_MAPS.contains(&key.as_str()) {
                    snake_keys(inner, &format!("{path}.{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                snake_keys(inner, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn assert_camel(what: &str, value: &Value) {
    let mut bad = Vec::new();
    snake_keys(value, what, &mut bad);
    assert!(bad.is_empty(), "not camelCase: {bad:?} in {value}");
}

fn assert_envelope(what: &str, value: &Value) {
    let keys: BTreeSet<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["items", "nextCursor"]),
        "{what}: {value}"
    );
    assert!(value["items"].is_array(), "{what}: {value}");
    assert!(
        value["nextCursor"].is_null() || value["nextCursor"].is_string(),
        "{what}: {value}"
    );
}

/// Reads every page of `path` with `limit`, returning the ids in order and the page count.
async fn all_pages(app: &TestApp, path: &str, token: &str, limit: u32) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let page = app.get(&url, token).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.text);
        assert_envelope(&url, &page.body);
        pages += 1;
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        ids.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page.body["nextCursor"].as_str() {
            Some(next) => {
                assert!(!items.is_empty(), "a next page after an empty one");
                cursor = Some(next.to_owned());
            }
            None => return (ids, pages),
        }
        assert!(pages < 50, "paging does not end");
    }
}

#[tokio::test]
async fn answers_are_camel_case_and_lists_page_through_the_envelope() {
    for app in apps(
        "answers_are_camel_case_and_lists_page_through_the_envelope",
        Options::default(),
    )
    .await
    {
        let owner = app.signup("contract@acme.io", "Contract Co").await;
        let t = format!("/api/v1/tenants/{}", owner.slug);
        let login = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "contract@acme.io", "password": "correct horse battery staple"}),
            )
            .await;
        let mut keys = Vec::new();
        for name in ["one", "two", "three", "four", "five"] {
            let created = app
                .post(
                    &format!("{t}/api-keys"),
                    Some(&owner.access),
                    json!({"name": name, "scopes": ["read"]}),
                )
                .await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
            assert_camel("api key", &created.body);
            keys.push(created.body["apiKey"]["id"].as_str().unwrap().to_owned());
        }
        let credential = app
            .post(
                &format!("{t}/credentials"),
                Some(&owner.access),
                json!({"provider": "openai", "label": "main", "secret": "sk-0123456789abcdef",
                       "isDefault": true, "metadata": {"base_url": "https://api.openai.com/v1"}}),
            )
            .await;
        assert_eq!(
            credential.status,
            StatusCode::CREATED,
            "{}",
            credential.text
        );
        assert_eq!(credential.body["isDefault"], true);

        // Single answers: camelCase all the way down (data maps aside).
        for path in [
            "/api/v1/auth/me".to_owned(),
            t.clone(),
            format!("{t}/usage"),
            format!("{t}/calls/stats"),
        ] {
            let reply = app.get(&path, &owner.access).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
            assert_camel(&path, &reply.body);
        }
        assert_camel("login", &login.body);
        assert!(
            login.body["tokens"]["accessToken"].is_string(),
            "{}",
            login.text
        );
        assert!(login.body["user"]["emailVerified"].is_boolean());

        // Every list is the envelope, camelCase inside.
        for list in [
            "/api/v1/tenants".to_owned(),
            format!("{t}/members"),
            format!("{t}/invitations"),
            format!("{t}/api-keys"),
            format!("{t}/credentials"),
            format!("{t}/audit-log"),
            format!("{t}/numbers"),
            format!("{t}/calls"),
            format!("{t}/do-not-call"),
            format!("{t}/usage/history"),
            format!("{t}/webhooks"),
            format!("{t}/webhooks/deliveries"),
        ] {
            let reply = app.get(&list, &owner.access).await;
            assert_eq!(reply.status, StatusCode::OK, "{list}: {}", reply.text);
            assert_envelope(&list, &reply.body);
            assert_camel(&list, &reply.body);
        }

        // In-memory paging (API keys): every key once, in the order of the whole list.
        let whole = app.get(&format!("{t}/api-keys"), &owner.access).await;
        let expected: Vec<String> = whole.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(expected.len(), 5);
        let (paged, pages) = all_pages(&app, &format!("{t}/api-keys"), &owner.access, 2).await;
        assert_eq!(paged, expected);
        assert_eq!(pages, 3);

        // Keyset paging (audit log, newest first): entries once each, none lost on ties.
        let (entries, pages) = all_pages(&app, &format!("{t}/audit-log"), &owner.access, 2).await;
        let unique: BTreeSet<&String> = entries.iter().collect();
        assert_eq!(unique.len(), entries.len(), "an entry came twice");
        assert!(
            entries.len() >= 6,
            "signup, five keys, a credential: {entries:?}"
        );
        assert!(pages >= 3);
        let whole = app
            .get(&format!("{t}/audit-log?limit=200"), &owner.access)
            .await;
        assert_eq!(whole.body["items"].as_array().unwrap().len(), entries.len());
        assert!(whole.body["nextCursor"].is_null());

        // A limit out of range and a cursor not issued here are refused, naming the field.
        for (query, field, code) in [
            ("limit=0", "limit", "out_of_range"),
            ("limit=201", "limit", "out_of_range"),
            ("cursor=not-a-cursor!", "cursor", "invalid_cursor"),
        ] {
            for list in [
                format!("{t}/api-keys"),
                format!("{t}/audit-log"),
                format!("{t}/calls"),
            ] {
                let reply = app.get(&format!("{list}?{query}"), &owner.access).await;
                assert_eq!(
                    reply.status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{list}?{query}: {}",
                    reply.text
                );
                assert_eq!(reply.body["error"]["field"], field);
                assert_eq!(reply.body["error"]["code"], code);
            }
        }
        // The browsable reference: one self-contained page naming every path.
        let docs = app.get("/api/docs", &owner.access).await;
        assert_eq!(docs.status, StatusCode::OK);
        assert!(
            docs.headers[axum::http::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(
            !docs.text.contains("<script"),
            "no scripts: it must work offline"
        );
        assert!(!docs.text.contains("src=\"http"), "no external assets");
        let document = app.get("/api/v1/openapi.json", &owner.access).await;
        for path in document.body["paths"].as_object().unwrap().keys() {
            let escaped = path.replace('&', "&amp;");
            assert!(docs.text.contains(&escaped), "{path} is not in /api/docs");
        }
        app.finish().await;
    }
}

/// Single resources that carry a list as one of their fields (not list endpoints): `me`
/// lists the caller's tenants beside the user; the platform's health view counts tenants per
/// plan and status (a handful of rows, not a list to page through).
const RESOURCES_WITH_ARRAYS: &[&str] = &["MeResponse", "Progress", "HealthView"];

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> (Option<String>, &'a Value) {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or_default();
            let target = &doc["components"]["schemas"][name];
            assert!(!target.is_null(), "dangling $ref {reference}");
            (Some(name.to_owned()), target)
        }
        None => (None, schema),
    }
}

fn is_camel(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Every property name of `schema` and the schemas inside it, with where it was found.
fn property_names(doc: &Value, schema: &Value, at: &str, out: &mut Vec<String>) {
    if let Value::Object(map) = schema {
        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            let name = reference.rsplit('/').next().unwrap_or_default();
            assert!(
                !doc["components"]["schemas"][name].is_null(),
                "{at}: dangling $ref {reference}"
            );
        }
        if let Some(properties) = map.get("properties").and_then(Value::as_object) {
            for (name, inner) in properties {
                out.push(format!("{at}.{name}"));
                property_names(doc, inner, &format!("{at}.{name}"), out);
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(inner) = map.get(key) {
                property_names(doc, inner, at, out);
            }
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            for inner in map.get(key).and_then(Value::as_array).into_iter().flatten() {
                property_names(doc, inner, at, out);
            }
        }
    }
}

#[test]
fn the_openapi_document_describes_every_route_in_the_one_contract() {
    let doc = serde_json::to_value(switchboard_gateway::http::openapi_document()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 40, "{} paths", paths.len());
    let mut problems = Vec::new();
    let mut operations = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            let op = &item[method];
            if op.is_null() {
                continue;
            }
            operations += 1;
            let at = format!("{} {path}", method.to_uppercase());
            for parameter in op["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap_or_default();
                if parameter["in"] == "query" && !is_camel(name) {
                    problems.push(format!("{at}: query parameter {name} is not camelCase"));
                }
            }
            let mut names = Vec::new();
            for body in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                property_names(
                    &doc,
                    &body.1["schema"],
                    &format!("{at} request"),
                    &mut names,
                );
            }
            let responses = op["responses"].as_object().unwrap();
            let success: Vec<_> = responses
                .iter()
                .filter(|(s, _)| s.starts_with('2'))
                .collect();
            if success.is_empty() {
                problems.push(format!("{at}: no success response"));
            }
            for (status, response) in responses {
                let content = response["content"].as_object();
                // 202 (accepted, nothing to show yet) and 204 have no body by definition.
                let bodiless = status == "204" || status == "202";
                if status.starts_with('2') && !bodiless && content.is_none_or(|c| c.is_empty()) {
                    problems.push(format!("{at}: {status} has no documented body"));
                }
                for (media, body) in content.into_iter().flatten() {
                    let schema = &body["schema"];
                    if schema.as_object().is_none_or(|s| s.is_empty()) {
                        problems.push(format!("{at}: {status} {media} has no schema"));
                        continue;
                    }
                    property_names(&doc, schema, &format!("{at} {status}"), &mut names);
                    if method != "get" || status != "200" || media != "application/json" {
                        continue;
                    }
                    // A list answers the envelope; no bare arrays, no lists in other shapes.
                    let (name, resolved) = resolve(&doc, schema);
                    if resolved["type"] == "array" {
                        problems.push(format!("{at}: answers a bare array"));
                        continue;
                    }
                    let properties = resolved["properties"].as_object();
                    let has_array = properties.into_iter().flatten().any(|(_, p)| {
                        let (_, p) = resolve(&doc, p);
                        p["type"] == "array"
                    });
                    let keys: BTreeSet<&str> = properties
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k.as_str())
                        .collect();
                    let envelope = keys == BTreeSet::from(["items", "nextCursor"]);
                    let allowed = name
                        .as_deref()
                        .is_some_and(|n| RESOURCES_WITH_ARRAYS.contains(&n));
                    if (has_array || keys.contains("items")) && !envelope && !allowed {
                        problems.push(format!("{at}: a list not in the envelope: {keys:?}"));
                    }
                    if envelope {
                        let query: BTreeSet<&str> = op["parameters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter(|p| p["in"] == "query")
                            .filter_map(|p| p["name"].as_str())
                            .collect();
                        if !query.contains("cursor") || !query.contains("limit") {
                            problems.push(format!("{at}: a list without ?cursor= and ?limit="));
                        }
                    }
                }
            }
            for name in names {
                let last = name.rsplit('.').next().unwrap_or_default();
                if !is_camel(last) {
                    problems.push(format!("{name}: not camelCase"));
                }
            }
        }
    }
    let mut names = Vec::new();
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        property_names(&doc, schema, name, &mut names);
    }
    for name in names {
        if !is_camel(name.rsplit('.').next().unwrap_or_default()) {
            problems.push(format!("schema {name}: not camelCase"));
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    println!("{} paths, {operations} operations checked", paths.len());
}

/// The public API's routes are registered only through `routes!` (so each is in the
/// document): no module of the public API adds a plain axum route.
#[test]
fn public_api_modules_add_routes_only_with_their_openapi_description() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    // Not the JSON API: the media WebSocket, the router's assembly, the console's pages.
    let machine = ["media.rs", "mod.rs", "console.rs"];
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.extension().is_none_or(|e| e != "rs") || machine.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let plain_routers =
            text.matches("Router::new()").count() - text.matches("OpenApiRouter::new()").count();
        // A plain route needs axum's method routers (`get(handler)` …).
        if text.contains("axum::routing") || plain_routers > 0 {
            offenders.push(name);
        }
    }
    let root = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
    let api = root
        .split("pub fn api_routes()")
        .nth(1)
        .and_then(|rest| rest.split("\n}\n").next())
        .unwrap();
    if api.contains(".route(") || api.contains("axum::routing") {
        offenders.push("mod.rs api_routes".to_owned());
    }
    assert!(offenders.is_empty(), "plain axum routes in {offenders:?}");
}
