//! The `Idempotency-Key` contract of the public API, shared by the gateway (which enforces it)
//! and its clients (the CLI sends one with every creating `POST`).
//!
//! A client sends a key of its choosing (a UUID is typical) with a `POST` that creates
//! something. The gateway remembers the first answer for [`RETENTION_HOURS`] hours, per tenant
//! and caller:
//!
//! * same key, same request (method, path, body) → the stored answer again, status and body,
//!   with [`REPLAYED_HEADER`] `: true`, and no second effect;
//! * same key, a different request → 422 `idempotency_key_reused` naming the header;
//! * same key while the first request is still running → 409 `idempotency_key_in_progress`.

/// The request header carrying the key.
pub const KEY_HEADER: &str = "Idempotency-Key";

/// The response header set (to `true`) on an answer replayed from an earlier request.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// The longest accepted key, in bytes.
pub const KEY_MAX_LEN: usize = 255;

/// How long an answer is remembered.
pub const RETENTION_HOURS: i64 = 24;

/// Why a key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The header is present but empty.
    #[error("the Idempotency-Key header is empty")]
    Empty,
    /// Longer than [`KEY_MAX_LEN`].
    #[error("the Idempotency-Key header is longer than {KEY_MAX_LEN} characters")]
    TooLong,
    /// Anything but visible ASCII (`!`…`~`).
    #[error("the Idempotency-Key header may hold only visible ASCII characters (no spaces)")]
    Invalid,
}

/// Checks a key: 1 to [`KEY_MAX_LEN`] visible ASCII characters.
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > KEY_MAX_LEN {
        return Err(KeyError::TooLong);
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(KeyError::Invalid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_visible_ascii() {
        assert_eq!(validate_key("b0e1c6c2-5d0a-4f55-9f0e-2f1d8b4a7c11"), Ok(()));
        assert_eq!(validate_key(&"k".repeat(KEY_MAX_LEN)), Ok(()));
        assert_eq!(validate_key(""), Err(KeyError::Empty));
        assert_eq!(
            validate_key(&"k".repeat(KEY_MAX_LEN + 1)),
            Err(KeyError::TooLong)
        );
        assert_eq!(validate_key("two words"), Err(KeyError::Invalid));
        assert_eq!(validate_key("clé"), Err(KeyError::Invalid));
    }
}
