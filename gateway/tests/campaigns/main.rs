//! Campaigns over the real router and a real database (SQLite always, Postgres when
//! `DATABASE_URL` is set): registration by the operator through the internal API, and the
//! dialer placing, pacing, retrying and settling calls.

// The harness is shared with the call-path tests; not every helper is used here.
#[allow(dead_code)]
#[path = "../support/harness.rs"]
mod harness;

mod dialer;
mod registration;
