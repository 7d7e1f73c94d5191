//! The per-tenant voice runtime (filled in by the runtime work).
