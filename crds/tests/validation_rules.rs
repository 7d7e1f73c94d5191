//! The admission rules in the schemas reject bad input. CEL rules are evaluated locally with
//! kube's CEL support (the same expressions the API server runs); patterns and bounds are
//! checked against the generated schema.

use kube::CustomResourceExt;
use kube::core::cel::{validate_cel, validate_cel_update};
use serde_json::{Value, json};
use switchboard_crds::{Campaign, PhoneNumber, Tenant};

fn spec_schema<K: CustomResourceExt>() -> Value {
    let crd = K::crd();
    let schema = serde_json::to_value(
        &crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema,
    )
    .unwrap();
    schema["properties"]["spec"].clone()
}

fn rules(schema: &Value) -> Vec<String> {
    schema["x-kubernetes-validations"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|r| r["rule"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn phone_number_schema_enforces_e164_and_exclusive_fields() {
    let spec = spec_schema::<PhoneNumber>();
    let pattern = spec["properties"]["number"]["pattern"].as_str().unwrap();
    assert_eq!(pattern, switchboard_crds::phone_number::E164_PATTERN);
    assert!(
        rules(&spec)
            .iter()
            .any(|r| r.contains("has(self.areaCode) && has(self.number)"))
    );
    let deletion = &spec["properties"]["deletionPolicy"]["enum"];
    assert_eq!(deletion, &json!(["Release", "Retain"]));
}

#[test]
fn tenant_schema_bounds_and_enums() {
    let spec = spec_schema::<Tenant>();
    assert_eq!(
        spec["properties"]["plan"]["enum"],
        json!(["free", "starter", "professional", "enterprise", "onprem"])
    );
    let replicas = &spec["properties"]["runtime"]["properties"]["replicas"];
    assert_eq!(replicas["minimum"].as_f64(), Some(0.0));
    assert_eq!(replicas["maximum"].as_f64(), Some(50.0));
    assert_eq!(spec["required"], json!(["displayName"]));
}

#[test]
fn campaign_contacts_need_exactly_one_source() {
    let spec = spec_schema::<Campaign>();
    let contacts = &spec["properties"]["contacts"];
    assert!(rules(contacts).iter().any(|r| r.contains("== 1")));
    let window = &spec["properties"]["schedule"]["properties"]["windowStart"]["pattern"];
    assert!(window.as_str().unwrap().contains("2[0-3]"));
}

fn phone_number(spec: Value) -> PhoneNumber {
    serde_json::from_value(json!({
        "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
        "metadata": {"name": "main", "namespace": "tenant-acme"}, "spec": spec
    }))
    .unwrap()
}

#[test]
fn cel_rejects_area_code_together_with_number() {
    let ok = phone_number(json!({"areaCode": "415"}));
    assert!(validate_cel(&ok).is_ok());
    let both = phone_number(json!({"areaCode": "415", "number": "+14155550100"}));
    let error = validate_cel(&both).unwrap_err().to_string();
    assert!(error.contains("not both"), "{error}");
}

#[test]
fn cel_keeps_country_and_number_immutable() {
    let old = phone_number(json!({"country": "US", "number": "+14155550100"}));
    let same = phone_number(
        json!({"country": "US", "number": "+14155550100", "deletionPolicy": "Retain"}),
    );
    assert!(validate_cel_update(&same, &old).is_ok());
    let moved = phone_number(json!({"country": "GB", "number": "+14155550100"}));
    assert!(
        validate_cel_update(&moved, &old)
            .unwrap_err()
            .to_string()
            .contains("country is immutable")
    );
    let renumbered = phone_number(json!({"country": "US", "number": "+14155550101"}));
    assert!(
        validate_cel_update(&renumbered, &old)
            .unwrap_err()
            .to_string()
            .contains("number is immutable")
    );
}

#[test]
fn cel_requires_exactly_one_contacts_source() {
    let campaign = |contacts: Value| -> Campaign {
        serde_json::from_value(json!({
            "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Campaign",
            "metadata": {"name": "survey", "namespace": "tenant-acme"},
            "spec": {"fromNumber": "main", "contacts": contacts}
        }))
        .unwrap()
    };
    assert!(validate_cel(&campaign(json!({"uploaded": true}))).is_ok());
    assert!(validate_cel(&campaign(json!({"configMapRef": {"name": "c"}}))).is_ok());
    assert!(validate_cel(&campaign(json!({"uploaded": false}))).is_err());
    assert!(
        validate_cel(&campaign(
            json!({"uploaded": true, "secretRef": {"name": "c"}})
        ))
        .is_err()
    );
}

#[test]
fn cel_requires_base_url_for_openai_compatible_providers() {
    let tenant = |llm: Value| -> Tenant {
        serde_json::from_value(json!({
            "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": "acme"},
            "spec": {"displayName": "Acme", "agent": {"llm": llm}}
        }))
        .unwrap()
    };
    assert!(validate_cel(&tenant(json!({"provider": "groq"}))).is_ok());
    assert!(
        validate_cel(&tenant(
            json!({"provider": "openai-compatible", "baseUrl": "http://vllm:8000/v1"})
        ))
        .is_ok()
    );
    let error = validate_cel(&tenant(json!({"provider": "openai-compatible"})))
        .unwrap_err()
        .to_string();
    assert!(error.contains("baseUrl is required"), "{error}");
}
