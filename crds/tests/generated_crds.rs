//! The committed CRD YAML must be exactly what the Rust types generate, and every field
//! must carry a description so `kubectl explain` helps.

use std::path::PathBuf;

use serde_json::Value;
use switchboard_crds::{all_crds, crd_file_name, crd_yaml};

fn chart_crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/switchboard/files/crds")
}

#[test]
fn committed_crd_yaml_matches_the_types() {
    for crd in all_crds() {
        let path = chart_crds_dir().join(crd_file_name(&crd));
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let generated = crd_yaml(&crd).unwrap();
        assert!(
            committed == generated,
            "{} is out of date; regenerate with `cargo run -p switchboard-operator -- crds --output-dir charts/switchboard/files/crds`",
            path.display()
        );
    }
}

/// Walks a schema, collecting the paths of properties without a description.
fn undescribed(schema: &Value, path: &str, missing: &mut Vec<String>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        if let Some(items) = schema.get("items") {
            undescribed(items, &format!("{path}[]"), missing);
        }
        return;
    };
    for (name, property) in properties {
        let here = format!("{path}.{name}");
        // apiVersion/kind/metadata are documented by Kubernetes itself.
        let standard =
            path.is_empty() && ["apiVersion", "kind", "metadata"].contains(&name.as_str());
        if !standard && property.get("description").is_none() {
            missing.push(here.clone());
        }
        undescribed(property, &here, missing);
    }
}

#[test]
fn every_field_has_a_description() {
    for crd in all_crds() {
        let version = &crd.spec.versions[0];
        let schema =
            serde_json::to_value(&version.schema.as_ref().unwrap().open_api_v3_schema).unwrap();
        let mut missing = Vec::new();
        undescribed(&schema, "", &mut missing);
        assert!(
            missing.is_empty(),
            "{}: fields without description: {missing:?}",
            crd.spec.names.kind
        );
    }
}

#[test]
fn crds_have_status_subresource_short_names_and_printer_columns() {
    for crd in all_crds() {
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{}",
            crd.spec.names.kind
        );
        assert!(
            !crd.spec
                .names
                .short_names
                .clone()
                .unwrap_or_default()
                .is_empty()
        );
        assert!(
            version
                .additional_printer_columns
                .as_ref()
                .is_some_and(|c| c.len() >= 3)
        );
    }
    let scopes: Vec<_> = all_crds().iter().map(|c| c.spec.scope.clone()).collect();
    assert_eq!(scopes, ["Cluster", "Namespaced", "Namespaced"]);
}
