//! The Switchboard operator: reconciles `Tenant`s into isolated per-tenant voice stacks,
//! `PhoneNumber`s into carrier purchases and `Campaign`s into gateway registrations.
//!
//! Layout: [`builders`] hold the desired state as pure functions; [`controllers`] compare it
//! with the cluster and apply it; [`leader`] makes two replicas safe; [`metrics`] feeds `/metrics`.

pub mod builders;
pub mod config;
pub mod controllers;
pub mod gateway_client;
pub mod leader;
pub mod metrics;

pub use config::OperatorConfig;
