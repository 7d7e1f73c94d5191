//! The public control plane (filled in by the gateway work).
