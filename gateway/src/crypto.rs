//! Envelope-free symmetric encryption of provider credentials: AES-256-GCM under the master
//! key, with a key id stored beside every ciphertext so the master key can be rotated (new
//! writes use the current key; reads find the old key by id).
//!
//! The associated data binds a ciphertext to its tenant and row, so a ciphertext copied into
//! another tenant's row (by a bug or an attacker with database write access) fails to decrypt.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;
const KEY_ID_DOMAIN: &str = "switchboard-master-key";

/// Encryption or decryption failure. Deliberately carries no secret material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// No configured master key has this id (it was rotated out too early).
    #[error("no master key with id {0}")]
    UnknownKey(String),
    /// Wrong key, tampered ciphertext or wrong associated data.
    #[error("ciphertext cannot be decrypted")]
    Decrypt,
    /// The encryption primitive failed (does not happen with valid inputs).
    #[error("encryption failed")]
    Encrypt,
}

/// A sealed secret: the id of the key used and base64(nonce ‖ ciphertext ‖ tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Id of the master key that sealed it.
    pub key_id: String,
    /// Base64 of nonce, ciphertext and tag.
    pub ciphertext: String,
}

/// The current master key and the former ones still able to decrypt.
pub struct Keyring {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl Keyring {
    /// A keyring whose `current` key encrypts and every key decrypts.
    pub fn new(current: &[u8; 32], previous: &[[u8; 32]]) -> Self {
        let mut keys = HashMap::new();
        for key in previous.iter().chain(std::iter::once(current)) {
            keys.insert(key_id(KEY_ID_DOMAIN, key), Aes256Gcm::new(key.into()));
        }
        Self {
            current: key_id(KEY_ID_DOMAIN, current),
            keys,
        }
    }

    /// Id of the key new secrets are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Encrypts `plaintext` under the current key, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &str) -> Result<Sealed, CryptoError> {
        let cipher = self.keys.get(&self.current).ok_or(CryptoError::Encrypt)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: aad.as_bytes(),
        };
        let ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| CryptoError::Encrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(Sealed {
            key_id: self.current.clone(),
            ciphertext: STANDARD.encode(out),
        })
    }

    /// Decrypts a sealed secret with the key named by its id, checking `aad`.
    pub fn open(&self, sealed: &Sealed, aad: &str) -> Result<Vec<u8>, CryptoError> {
        let cipher = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| CryptoError::UnknownKey(sealed.key_id.clone()))?;
        let bytes = STANDARD
            .decode(&sealed.ciphertext)
            .map_err(|_| CryptoError::Decrypt)?;
        if bytes.len() < NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: aad.as_bytes(),
        };
        cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// Associated data for a provider credential: its tenant and its id.
pub fn credential_aad(tenant_id: &str, credential_id: &str) -> String {
    format!("provider-credential:{tenant_id}:{credential_id}")
}

/// A short, stable identifier of a key (the first 8 hex digits of a domain-separated SHA-256),
/// stored next to what the key protects so that rotation knows which key to use.
pub fn key_id(domain: &str, key: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(domain.as_bytes());
    hasher.update([0]);
    hasher.update(key);
    hex::encode(&hasher.finalize()[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_differ_per_key_and_are_stable() {
        assert_eq!(key_id("a", b"k1"), key_id("a", b"k1"));
        assert_ne!(key_id("a", b"k1"), key_id("a", b"k2"));
        assert_eq!(key_id("a", b"k1").len(), 8);
    }

    #[test]
    fn round_trip_and_nonces_are_fresh() {
        let ring = Keyring::new(&[1; 32], &[]);
        let a = ring.seal(b"sk-secret", "t1:c1").unwrap();
        let b = ring.seal(b"sk-secret", "t1:c1").unwrap();
        assert_ne!(
            a.ciphertext, b.ciphertext,
            "same plaintext must not give the same ciphertext"
        );
        assert_eq!(ring.open(&a, "t1:c1").unwrap(), b"sk-secret");
        assert!(!a.ciphertext.contains("sk-secret"));
    }

    #[test]
    fn wrong_aad_or_tampering_fails() {
        let ring = Keyring::new(&[1; 32], &[]);
        let sealed = ring.seal(b"sk-secret", "t1:c1").unwrap();
        assert_eq!(ring.open(&sealed, "t2:c1"), Err(CryptoError::Decrypt));
        let mut bytes = STANDARD.decode(&sealed.ciphertext).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = Sealed {
            key_id: sealed.key_id.clone(),
            ciphertext: STANDARD.encode(bytes),
        };
        assert_eq!(ring.open(&tampered, "t1:c1"), Err(CryptoError::Decrypt));
    }

    #[test]
    fn rotation_keeps_old_ciphertexts_readable() {
        let old = Keyring::new(&[1; 32], &[]);
        let sealed = old.seal(b"v", "a").unwrap();
        let rotated = Keyring::new(&[2; 32], &[[1; 32]]);
        assert_ne!(rotated.current_key_id(), sealed.key_id);
        assert_eq!(rotated.open(&sealed, "a").unwrap(), b"v");
        assert_eq!(
            rotated.seal(b"v", "a").unwrap().key_id,
            rotated.current_key_id()
        );
        let forgotten = Keyring::new(&[2; 32], &[]);
        assert!(matches!(
            forgotten.open(&sealed, "a"),
            Err(CryptoError::UnknownKey(_))
        ));
    }
}
