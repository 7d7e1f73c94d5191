//! Part-2 tests of the gateway (carrier webhooks, limits, media proxy, billing, outbox) over
//! the real router and a real database. One binary to keep link time down.

mod harness;

mod billing;
mod calls;
mod campaigns;
mod dialer;

mod limits;
mod media;
mod outbox;
mod signatures;
