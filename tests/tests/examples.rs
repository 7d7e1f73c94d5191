//! Every custom resource under `examples/` is one the API would admit: it parses into the
//! typed resource with no unknown fields, passes the CRDs' CEL rules, and a Tenant renders a
//! valid stack. (CI also validates every plain manifest with `kubernetes-validate --strict`.)

use std::path::{Path, PathBuf};

use kube::core::cel::validate_cel;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard_crds::{Campaign, PhoneNumber, Tenant};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Every YAML document of every example file, with the file it came from.
fn documents() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(document).expect("valid YAML");
            if !value.is_null() {
                out.push((path.clone(), value));
            }
        }
    }
    out
}

/// Parses strictly: a field the Rust type does not know would be dropped by the API server.
fn parse_strict<K: DeserializeOwned + serde::Serialize>(path: &Path, value: &Value) -> K {
    let parsed: K = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{}: not a valid {}: {e}", path.display(), value["kind"]));
    let round_trip = serde_json::to_value(&parsed).unwrap();
    assert_no_unknown_fields(&value["spec"], &round_trip["spec"], path, "spec");
    parsed
}

fn assert_no_unknown_fields(original: &Value, parsed: &Value, path: &Path, at: &str) {
    if let (Some(original), Some(parsed)) = (original.as_object(), parsed.as_object()) {
        for (key, value) in original {
            let Some(kept) = parsed.get(key) else {
                panic!("{}: unknown field {at}.{key}", path.display());
            };
            assert_no_unknown_fields(value, kept, path, &format!("{at}.{key}"));
        }
    }
}

#[test]
fn example_custom_resources_are_admissible() {
    let mut counts = (0, 0, 0);
    for (path, value) in documents() {
        match value["kind"].as_str() {
            Some("Tenant") if value["apiVersion"] == "voice.switchboard.dev/v1alpha1" => {
                let tenant: Tenant = parse_strict(&path, &value);
                validate_cel(&tenant).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let mut with_uid = tenant.clone();
                with_uid.metadata.uid = Some("example".into());
                switchboard_operator::builders::desired_stack(&with_uid, &Default::default())
                    .unwrap_or_else(|e| {
                        panic!("{}: operator would reject it: {e}", path.display())
                    });
                counts.0 += 1;
            }
            Some("PhoneNumber") => {
                let number: PhoneNumber = parse_strict(&path, &value);
                validate_cel(&number).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                counts.1 += 1;
            }
            Some("Campaign") => {
                let campaign: Campaign = parse_strict(&path, &value);
                validate_cel(&campaign).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                counts.2 += 1;
            }
            _ => {}
        }
    }
    println!(
        "validated {} Tenant(s), {} PhoneNumber(s), {} Campaign(s)",
        counts.0, counts.1, counts.2
    );
    assert!(
        counts.0 >= 1 && counts.1 >= 1 && counts.2 >= 1,
        "examples cover every kind: {counts:?}"
    );
}

#[test]
fn a_misspelt_field_is_caught() {
    let value: Value = serde_json::json!({
        "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
        "metadata": {"name": "x", "namespace": "tenant-acme"},
        "spec": {"areaCod": "415"}
    });
    let result =
        std::panic::catch_unwind(|| parse_strict::<PhoneNumber>(Path::new("inline"), &value));
    assert!(result.is_err(), "unknown field must be reported");
}
