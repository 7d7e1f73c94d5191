//! The browsable API reference at `/api/docs`: one HTML page rendered from the OpenAPI
//! document, with no scripts and no external assets, so it works offline (air-gapped
//! clusters) and cannot drift from the document. Operations are grouped by tag, each with its
//! parameters, request body and responses; schemas are listed once at the end and linked.

use std::fmt::Write as _;

use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}\
code,.path{font-family:ui-monospace,monospace}h2{border-bottom:1px solid #ccd;margin-top:2.5rem}\
.op{border:1px solid #dde;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}\
.method{display:inline-block;min-width:4.5rem;font-weight:bold;text-transform:uppercase}\
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #dde;padding:.2rem .5rem;text-align:left;vertical-align:top}\
nav a{margin-right:.8rem}";

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// An anchor id made of safe characters.
fn anchor(prefix: &str, text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{prefix}-{cleaned}")
}

/// A short description of a schema's type, linking referenced schemas.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#{}\">{}</a>", anchor("schema", name), esc(name));
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema[combinator].as_array() {
            let joined: Vec<String> = parts.iter().map(type_of).collect();
            let separator = if combinator == "allOf" {
                " &amp; "
            } else {
                " | "
            };
            return joined.join(separator);
        }
    }
    let kinds: Vec<&str> = match &schema["type"] {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut names = Vec::new();
    for kind in kinds {
        names.push(match kind {
            "array" => format!("array of {}", type_of(&schema["items"])),
            "object" if schema["properties"].is_object() => "object (below)".to_owned(),
            "object" => match &schema["additionalProperties"] {
                Value::Object(_) => {
                    format!("map of {}", type_of(&schema["additionalProperties"]))
                }
                _ => "object".to_owned(),
            },
            other => esc(other),
        });
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", esc(&v.to_string())))
            .collect();
        names.push(format!("one of {}", values.join(", ")));
    }
    if names.is_empty() {
        "any".to_owned()
    } else {
        names.join(" or ")
    }
}

/// The properties of an object schema as a table (nested objects inline).
fn properties_table(out: &mut String, schema: &Value) {
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str(
        "<table><tr><th>field</th><th>type</th><th>required</th><th>description</th></tr>",
    );
    for (name, property) in properties {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}",
            esc(name),
            type_of(property),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                ""
            },
            esc(property["description"].as_str().unwrap_or_default()),
        );
        if property["properties"].is_object() {
            properties_table(out, property);
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</table>");
}

/// A schema: its type, and its fields when it is an object.
fn schema_block(out: &mut String, schema: &Value) {
    let _ = write!(out, "<p>{}</p>", type_of(schema));
    properties_table(out, schema);
}

fn content_blocks(out: &mut String, content: &Value) {
    if let Some(content) = content.as_object() {
        for (media_type, body) in content {
            let _ = write!(out, "<p><code>{}</code></p>", esc(media_type));
            schema_block(out, &body["schema"]);
        }
    }
}

fn operation(out: &mut String, method: &str, path: &str, op: &Value) {
    let id = anchor("op", &format!("{method}-{path}"));
    let _ = write!(
        out,
        "<div class=\"op\" id=\"{id}\"><h3><span class=\"method\">{}</span> <span class=\"path\">{}</span></h3>",
        esc(method),
        esc(path)
    );
    if let Some(text) = op["description"].as_str().or(op["summary"].as_str()) {
        let _ = write!(out, "<p>{}</p>", esc(text));
    }
    if let Some(parameters) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
        out.push_str("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>required</th><th>description</th></tr>");
        for parameter in parameters {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(parameter["name"].as_str().unwrap_or_default()),
                esc(parameter["in"].as_str().unwrap_or_default()),
                type_of(&parameter["schema"]),
                if parameter["required"] == true {
                    "yes"
                } else {
                    ""
                },
                esc(parameter["description"].as_str().unwrap_or_default()),
            );
        }
        out.push_str("</table>");
    }
    if op["requestBody"].is_object() {
        out.push_str("<h4>Request body</h4>");
        content_blocks(out, &op["requestBody"]["content"]);
    }
    if let Some(responses) = op["responses"].as_object() {
        out.push_str("<h4>Responses</h4>");
        for (status, response) in responses {
            let _ = write!(
                out,
                "<p><strong>{}</strong> {}</p>",
                esc(status),
                esc(response["description"].as_str().unwrap_or_default())
            );
            content_blocks(out, &response["content"]);
        }
    }
    out.push_str("</div>");
}

/// Renders the whole reference page.
pub fn render(document: &utoipa::openapi::OpenApi) -> String {
    let doc = serde_json::to_value(document).unwrap_or(Value::Null);
    let title = doc["info"]["title"].as_str().unwrap_or("API reference");
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1><p>{}</p><p>Machine-readable: <a href=\"/api/v1/openapi.json\"><code>/api/v1/openapi.json</code></a></p>",
        esc(title),
        esc(title),
        esc(doc["info"]["description"].as_str().unwrap_or_default())
    );
    let tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or_default().to_owned(),
                        t["description"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.push_str("<nav>");
    for (name, _) in &tags {
        let _ = write!(
            out,
            "<a href=\"#{}\">{}</a>",
            anchor("tag", name),
            esc(name)
        );
    }
    out.push_str("<a href=\"#schemas\">schemas</a></nav>");
    let empty = serde_json::Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    for (tag, description) in &tags {
        let _ = write!(
            out,
            "<h2 id=\"{}\">{}</h2><p>{}</p>",
            anchor("tag", tag),
            esc(tag),
            esc(description)
        );
        for (path, item) in paths {
            for method in METHODS {
                let op = &item[method];
                let tagged = op["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == tag.as_str()));
                if tagged {
                    operation(&mut out, method, path, op);
                }
            }
        }
    }
    out.push_str("<h2 id=\"schemas\">Schemas</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let _ = write!(
                out,
                "<div class=\"op\" id=\"{}\"><h3>{}</h3><p>{}</p>",
                anchor("schema", name),
                esc(name),
                esc(schema["description"].as_str().unwrap_or_default())
            );
            schema_block(&mut out, schema);
            out.push_str("</div>");
        }
    }
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_document_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(anchor("op", "get-/api/v1/{x}"), "op-get--api-v1--x-");
    }

    #[test]
    fn types_link_their_schemas() {
        let schema = serde_json::json!({"type": "array", "items": {"$ref": "#/components/schemas/CallView"}});
        assert_eq!(
            type_of(&schema),
            "array of <a href=\"#schema-CallView\">CallView</a>"
        );
        assert_eq!(
            type_of(&serde_json::json!({"type": ["string", "null"]})),
            "string or null"
        );
    }
}
