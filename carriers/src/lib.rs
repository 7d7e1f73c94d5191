//! Carrier REST clients and webhook signature checks (filled in by the phone-numbers work).
