//! The call path over the real router and a real database (SQLite always, Postgres when
//! `DATABASE_URL` is set): carrier webhooks and their signatures, call records, usage limits,
//! the media proxy, and what calls lead to — Stripe billing and customer webhooks.

#[path = "../support/harness.rs"]
mod harness;

mod billing;
mod bounds;
mod calls;
mod group_commit;
mod lifecycle;
mod limits;
mod media;
mod outbox;
mod pbx_cdr;
mod recording;
mod signatures;
mod slow_clients;
