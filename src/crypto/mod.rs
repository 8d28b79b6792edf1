//! Secrets at rest: AES-256-GCM under a master key, each ciphertext tagged with the id of the key that
//! sealed it so that keys can be rotated, and bound to the row it belongs to (associated data).

mod master_key;
pub mod random;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

pub use master_key::{MasterKey, load_or_create_key_file};

/// A sealed secret as stored: `v1.<key id>.<base64(nonce || ciphertext)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed(String);

impl Sealed {
    pub fn from_stored(raw: String) -> Self {
        Sealed(raw)
    }
    pub fn as_stored(&self) -> &str {
        &self.0
    }
    pub fn key_id(&self) -> Option<&str> {
        self.0.split('.').nth(1)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "the secret was sealed with master key `{0}`, which is not configured (set it as JSM_SSO_MASTER_KEY or list it in JSM_SSO_PREVIOUS_MASTER_KEYS)"
    )]
    UnknownKey(String),
    #[error("a stored secret is malformed")]
    Malformed,
    #[error("a stored secret failed authentication (wrong key, or the row was tampered with)")]
    Tampered,
}

/// The current master key plus older ones still accepted for opening.
#[derive(Clone)]
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring(current={}, previous={})", self.current.id(), self.previous.len())
    }
}

impl Keyring {
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        Keyring { current, previous }
    }

    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// Seals `plaintext`; `context` names the row and column it is stored in, so a ciphertext copied to
    /// another row does not open.
    pub fn seal(&self, plaintext: &str, context: &str) -> Sealed {
        let cipher = Aes256Gcm::new_from_slice(self.current.bytes()).expect("32-byte key");
        let nonce_bytes: [u8; 12] = random::bytes();
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        let mut blob = nonce_bytes.to_vec();
        blob.extend_from_slice(&ct);
        Sealed(format!("v1.{}.{}", self.current.id(), STANDARD.encode(blob)))
    }

    pub fn open(&self, sealed: &Sealed, context: &str) -> Result<SecretString, CryptoError> {
        let mut parts = sealed.0.splitn(3, '.');
        let (Some("v1"), Some(kid), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CryptoError::Malformed);
        };
        let key = std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id() == kid)
            .ok_or_else(|| CryptoError::UnknownKey(kid.to_string()))?;
        let blob = STANDARD.decode(b64).map_err(|_| CryptoError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ct) = blob.split_at(12);
        let cipher = Aes256Gcm::new_from_slice(key.bytes()).expect("32-byte key");
        let pt = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context.as_bytes() })
            .map_err(|_| CryptoError::Tampered)?;
        String::from_utf8(pt).map(SecretString::from).map_err(|_| CryptoError::Malformed)
    }

    /// Opens with any known key and seals again under the current one.
    pub fn reseal(&self, sealed: &Sealed, context: &str) -> Result<Sealed, CryptoError> {
        let plain = self.open(sealed, context)?;
        Ok(self.seal(plain.expose_secret(), context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> MasterKey {
        MasterKey::from_bytes([b; 32])
    }

    #[test]
    fn round_trip_and_context_binding() {
        let ring = Keyring::new(key(1), vec![]);
        let sealed = ring.seal("s3cret", "tenant:a");
        assert!(!sealed.as_stored().contains("s3cret"));
        assert_eq!(ring.open(&sealed, "tenant:a").unwrap().expose_secret(), "s3cret");
        assert!(matches!(ring.open(&sealed, "tenant:b"), Err(CryptoError::Tampered)));
    }

    #[test]
    fn nonces_differ() {
        let ring = Keyring::new(key(1), vec![]);
        assert_ne!(ring.seal("x", "c"), ring.seal("x", "c"));
    }

    #[test]
    fn tampering_is_detected() {
        let ring = Keyring::new(key(1), vec![]);
        let sealed = ring.seal("s3cret", "c");
        let mut raw = sealed.as_stored().to_string();
        let last = raw.pop().unwrap();
        raw.push(if last == 'A' { 'B' } else { 'A' });
        assert!(ring.open(&Sealed::from_stored(raw), "c").is_err());
        assert!(matches!(ring.open(&Sealed::from_stored("garbage".into()), "c"), Err(CryptoError::Malformed)));
    }

    #[test]
    fn rotation_keeps_old_secrets_readable_until_resealed() {
        let old = Keyring::new(key(1), vec![]);
        let sealed = old.seal("s3cret", "c");
        let new_only = Keyring::new(key(2), vec![]);
        assert!(matches!(new_only.open(&sealed, "c"), Err(CryptoError::UnknownKey(_))));
        let both = Keyring::new(key(2), vec![key(1)]);
        let resealed = both.reseal(&sealed, "c").unwrap();
        assert_eq!(resealed.key_id(), Some(key(2).id()));
        assert_eq!(new_only.open(&resealed, "c").unwrap().expose_secret(), "s3cret");
    }
}
