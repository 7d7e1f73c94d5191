//! Password hashing (argon2id with the crate's OWASP-recommended defaults) and the rules a new
//! password must meet.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password, in bytes: bounds hashing work per request.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// A few of the most common passwords that are long enough to pass the length rule.
const COMMON_PASSWORDS: &[&str] = &[
    "1234567890",
    "12345678910",
    "0123456789",
    "password123",
    "password12",
    "qwertyuiop",
    "iloveyou12",
    "1q2w3e4r5t",
    "qwerty1234",
    "passw0rd123",
    "administrator",
    "letmein123",
    "welcome123",
    "abc1234567",
    "1111111111",
    "aaaaaaaaaa",
    "switchboard",
];

/// Failure to hash or parse a stored hash.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let mut salt_bytes = [0u8; 16];
    rand::fill(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| HashError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the stored PHC hash (constant-time inside argon2).
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of a random password, verified against when the e-mail is unknown so that a login
/// for a missing account costs the same time as one for an existing account.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut random = [0u8; 16];
        rand::fill(&mut random);
        hash_password(&hex::encode(random)).unwrap_or_default()
    })
}

/// Why a new password is refused (the message is shown to the user).
pub fn password_weakness(password: &str, email: &str) -> Option<&'static str> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Some("password must be at least 10 characters long");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Some("password must be at most 256 bytes long");
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Some("password is too common");
    }
    let distinct: std::collections::HashSet<char> = password.chars().collect();
    if distinct.len() < 4 {
        return Some("password must contain at least 4 different characters");
    }
    let local_part = email.split('@').next().unwrap_or_default().to_lowercase();
    if lower == email.to_lowercase() || (!local_part.is_empty() && lower == local_part) {
        return Some("password must not be your e-mail address");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_use_argon2id() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong horse battery", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn weak_passwords_are_named() {
        assert!(password_weakness("short", "a@b.io").is_some());
        assert!(password_weakness("password123", "a@b.io").is_some());
        assert!(password_weakness("aaaaaaaaaaaaab", "a@b.io").is_some());
        assert!(password_weakness("alice.smith", "alice.smith@b.io").is_some());
        assert!(password_weakness("tr0ub4dor&3-staple", "a@b.io").is_none());
    }
}
