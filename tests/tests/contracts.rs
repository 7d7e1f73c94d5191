//! The contracts the operator and the gateway share (`switchboard_crds`) give the same answers
//! on both sides when both are configured the same way, as the Helm chart configures them:
//! a tenant's namespace and runtime endpoint from `SWITCHBOARD_NAMESPACE_PREFIX` (here not
//! the default), and its effective plan limits from `SWITCHBOARD_PLAN_LIMITS`.

use clap::Parser;
use k8s_openapi::jiff::Timestamp;
use switchboard_crds::Tenant;
use switchboard_gateway::media::call_token::CallClaims;
use switchboard_operator::OperatorConfig;
use switchboard_operator::builders::campaign::TenantFacts;
use switchboard_operator::builders::desired_stack;
use switchboard_operator::controllers::tenant::{Observed, desired_status};

const PREFIX: &str = "customer-";
const PLAN_LIMITS: &str = r#"{"free": {"campaigns": true, "monthlyCalls": 7}}"#;

/// The gateway's settings, parsed from its command line as `switchboard-gateway` does.
#[derive(Parser)]
struct GatewayCli {
    #[command(flatten)]
    config: switchboard_gateway::Config,
}

fn gateway_config() -> switchboard_gateway::Config {
    GatewayCli::try_parse_from([
        "switchboard-gateway",
        "--database-url",
        "sqlite::memory:",
        "--kubernetes",
        "true",
        "--namespace-prefix",
        PREFIX,
        "--plan-limits",
        PLAN_LIMITS,
    ])
    .expect("gateway flags")
    .config
}

fn operator_config() -> OperatorConfig {
    OperatorConfig {
        namespace_prefix: PREFIX.to_owned(),
        plan_limits: switchboard_crds::PlanOverrides::parse(Some(PLAN_LIMITS))
            .expect("operator plan limits"),
        ..OperatorConfig::default()
    }
}

fn tenant() -> Tenant {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "voice.switchboard.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "acme", "generation": 1},
        "spec": {"displayName": "Acme", "plan": "free"}
    }))
    .expect("tenant")
}

#[test]
fn operator_and_gateway_agree_on_a_tenants_namespace_and_runtime_endpoint() {
    let gateway = gateway_config();
    let operator = operator_config();
    let tenant = tenant();

    // The operator creates the namespace and publishes the endpoint in the Tenant's status.
    let stack = desired_stack(&tenant, &operator).expect("valid tenant");
    let namespace = stack.namespace.metadata.name.clone().expect("named");
    let status = desired_status(
        &tenant,
        &namespace,
        &Observed::default(),
        Timestamp::from_second(1_000).expect("time"),
    );
    let endpoint = status.runtime_endpoint.expect("runtime endpoint");
    assert_eq!(namespace, "customer-acme");
    assert_eq!(
        endpoint,
        "http://voice-runtime.customer-acme.svc.cluster.local:8080"
    );
    assert_eq!(status.namespace.as_deref(), Some("customer-acme"));

    // The gateway writes into the same namespace and proxies media to the same endpoint.
    let naming = gateway.tenant_naming();
    assert_eq!(naming, switchboard_crds::naming::TenantNaming::new(PREFIX));
    assert_eq!(naming.namespace("acme"), namespace);
    assert_eq!(naming.runtime_endpoint("acme"), endpoint);
    let claims = CallClaims {
        tenant_id: "t-1".into(),
        slug: "acme".into(),
        call_id: "c-1".into(),
        carrier: "twilio".into(),
        exp: 0,
        agent: None,
    };
    let upstream = switchboard_gateway::media::proxy::upstream_url(&gateway, &claims)
        .expect("Kubernetes mode proxies to the tenant's runtime");
    assert_eq!(
        upstream,
        "ws://voice-runtime.customer-acme.svc.cluster.local:8080/media/twilio"
    );
    assert_eq!(naming.tenant_of(&namespace), Some("acme"));
}

#[test]
fn operator_and_gateway_agree_on_a_tenants_effective_limits() {
    let gateway = gateway_config();
    let operator = operator_config();
    let tenant = tenant();
    let gateway_overrides =
        switchboard_crds::PlanOverrides::parse(gateway.voice.plan_limits.as_deref())
            .expect("gateway plan limits");
    assert_eq!(gateway_overrides, operator.plan_limits);

    // The operator's view (campaign validation, number limits) …
    let by_operator = tenant.spec.effective_limits(&operator.plan_limits);
    assert!(TenantFacts::of(&tenant, &operator.plan_limits).campaigns_allowed);
    // … and the gateway's (metering, dialer holds), for a tenant without stored overrides.
    let by_gateway = switchboard_crds::effective_limits(
        switchboard_gateway::usage::plan_or_free("free"),
        &gateway_overrides,
        None,
    );
    assert_eq!(by_operator, by_gateway);
    assert_eq!(
        (by_gateway.monthly_calls, by_gateway.campaigns),
        (Some(7), true)
    );
}
