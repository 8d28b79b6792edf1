//! The SP's signing key pairs: RSA-2048 with a self-signed certificate, one `current` per tenant and
//! optionally a `next` one published beside it for a rollover without downtime.

use chrono::{DateTime, Utc};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};
use secrecy::{ExposeSecret, SecretString};

/// How long a generated SP certificate is valid. SAML trusts the key, not the dates, but some IdPs
/// refuse expired certificates, so make it long.
const VALIDITY_DAYS: u32 = 3650;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Current,
    Next,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Current => "current",
            KeyState::Next => "next",
            KeyState::Retired => "retired",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "current" => KeyState::Current,
            "next" => KeyState::Next,
            "retired" => KeyState::Retired,
            _ => return None,
        })
    }
}

/// A freshly generated key pair, before it is sealed and stored.
pub struct GeneratedKey {
    pub private_key_pem: SecretString,
    pub certificate_pem: String,
    pub fingerprint_sha256: String,
    pub not_after: DateTime<Utc>,
}

/// Generates an RSA-2048 key and a self-signed SHA-256 certificate naming the SP.
pub fn generate(common_name: &str, now: DateTime<Utc>) -> Result<GeneratedKey, openssl::error::ErrorStack> {
    let rsa = Rsa::generate(2048)?;
    let key = PKey::from_rsa(rsa)?;
    let mut name = X509NameBuilder::new()?;
    let cn: String = common_name.chars().take(64).collect();
    name.append_entry_by_text("CN", &cn)?;
    name.append_entry_by_text("O", "jsm-sso")?;
    let name = name.build();
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    let not_before = Asn1Time::from_unix(now.timestamp() - 3600)?;
    let not_after_secs = now.timestamp() + i64::from(VALIDITY_DAYS) * 86_400;
    builder.set_not_before(&not_before)?;
    let not_after = Asn1Time::from_unix(not_after_secs)?;
    builder.set_not_after(&not_after)?;
    builder.sign(&key, MessageDigest::sha256())?;
    let cert = builder.build();
    let der = cert.to_der()?;
    Ok(GeneratedKey {
        private_key_pem: SecretString::from(String::from_utf8(key.private_key_to_pem_pkcs8()?).expect("PEM is ASCII")),
        certificate_pem: String::from_utf8(cert.to_pem()?).expect("PEM is ASCII"),
        fingerprint_sha256: super::metadata::fingerprint_sha256(&der),
        not_after: DateTime::from_timestamp(not_after_secs, 0).unwrap_or(now),
    })
}

/// A stored SP key, opened.
#[derive(Clone)]
pub struct SpKey {
    pub id: String,
    pub state: KeyState,
    pub private_key: PKey<Private>,
    pub certificate_pem: String,
    pub fingerprint_sha256: String,
    pub not_after: DateTime<Utc>,
}

impl std::fmt::Debug for SpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SpKey({}, {:?}, {})", self.id, self.state, self.fingerprint_sha256)
    }
}

impl SpKey {
    pub fn open(
        id: String,
        state: KeyState,
        private_pem: &SecretString,
        certificate_pem: String,
        fingerprint_sha256: String,
        not_after: DateTime<Utc>,
    ) -> Result<Self, openssl::error::ErrorStack> {
        Ok(SpKey {
            private_key: PKey::private_key_from_pem(private_pem.expose_secret().as_bytes())?,
            id,
            state,
            certificate_pem,
            fingerprint_sha256,
            not_after,
        })
    }

    /// The certificate's base64 DER, as it goes into `<ds:X509Certificate>`.
    pub fn certificate_base64(&self) -> String {
        self.certificate_pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_rsa_2048_with_a_matching_certificate() {
        let now = Utc::now();
        let k = generate("sso.example.com", now).unwrap();
        let cert = X509::from_pem(k.certificate_pem.as_bytes()).unwrap();
        let key = PKey::private_key_from_pem(k.private_key_pem.expose_secret().as_bytes()).unwrap();
        assert_eq!(key.bits(), 2048);
        assert!(cert.public_key().unwrap().public_eq(&key));
        assert!(cert.verify(&cert.public_key().unwrap()).unwrap(), "self-signed");
        assert!(k.not_after > now + chrono::Duration::days(3000));
        assert_eq!(k.fingerprint_sha256.len(), 32 * 3 - 1);
        let other = generate("sso.example.com", now).unwrap();
        assert_ne!(k.fingerprint_sha256, other.fingerprint_sha256);
    }
}
