//! The Switchboard operator.
