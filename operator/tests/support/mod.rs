//! Shared set-up for controller tests: the in-memory Kubernetes API server of
//! `switchboard-fake-cluster`, and a controller [`Context`] on top of it.

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::Reporter;
use switchboard_operator::OperatorConfig;
use switchboard_operator::controllers::Context;
use switchboard_operator::gateway_client::{GatewayClient, InternalToken};

pub use switchboard_fake_cluster::*;

/// A controller context over `client` with default operator settings.
pub fn context(client: Client) -> Arc<Context> {
    let metrics = Arc::new(switchboard_operator::controllers::metrics().expect("metrics"));
    let reporter = Reporter {
        controller: "switchboard-operator".into(),
        instance: Some("test".into()),
    };
    Arc::new(Context::new(
        client,
        OperatorConfig::default(),
        metrics,
        reporter,
    ))
}

/// A controller context whose gateway client points at `gateway_url` with `token`.
pub fn context_with_gateway(client: Client, gateway_url: &str, token: &str) -> Arc<Context> {
    let metrics = Arc::new(switchboard_operator::controllers::metrics().expect("metrics"));
    let reporter = Reporter {
        controller: "switchboard-operator".into(),
        instance: Some("test".into()),
    };
    let config = OperatorConfig {
        gateway_internal_url: gateway_url.to_owned(),
        ..OperatorConfig::default()
    };
    let gateway = GatewayClient::new(gateway_url, InternalToken::new(token).expect("token"))
        .expect("gateway client");
    Arc::new(Context::new(client, config, metrics, reporter).with_gateway(gateway))
}
