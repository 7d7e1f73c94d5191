//! HTTP tests of the gateway over the real router and a real database (SQLite always,
//! Postgres when `DATABASE_URL` is set). One test binary, several modules, to keep link time
//! and CI time down.

mod common;

mod agents;
mod auth;
mod console;
mod contract;
mod cross_cutting;
mod errors;
mod idempotency;
mod isolation;
mod keys_and_credentials;
mod kubernetes;
mod members;
mod metering;
mod numbers;
mod rls;
mod smtp;
mod tenant_manifests;
mod test_calls;
