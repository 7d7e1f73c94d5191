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
        app.finish().await;
    }
}
