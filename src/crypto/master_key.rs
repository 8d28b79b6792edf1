use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// A 256-bit key. Its id is derived from the key itself, so it needs no bookkeeping.
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; 32],
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::digest([b"jsm-sso master key id\0".as_slice(), &bytes].concat());
        MasterKey { bytes, id: hex::encode(&digest[..6]) }
    }

    pub fn from_base64(raw: &str) -> Result<Self, String> {
        let decoded = STANDARD.decode(raw.trim()).map_err(|_| {
            "must be base64 of 32 random bytes (generate one with `openssl rand -base64 32`)".to_string()
        })?;
        let bytes: [u8; 32] =
            decoded.try_into().map_err(|v: Vec<u8>| format!("must decode to exactly 32 bytes, got {}", v.len()))?;
        Ok(Self::from_bytes(bytes))
    }

    pub fn generate() -> Self {
        Self::from_bytes(super::random::bytes())
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Writes the key to `path` with mode 0600, atomically (temporary file, then rename).
    pub fn write_file(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(self.to_base64().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    }
}

/// Reads the master key file, or creates one (and says so) when it does not exist yet.
pub fn load_or_create_key_file(path: &Path) -> Result<MasterKey, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => MasterKey::from_base64(&text).map_err(|m| format!("master key file {}: {m}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            key.write_file(path).map_err(|e| format!("cannot create the master key file {}: {e}", path.display()))?;
            tracing::warn!(
                path = %path.display(),
                "generated a new master key; back this file up with the database, or set JSM_SSO_MASTER_KEY"
            );
            Ok(key)
        }
        Err(e) => Err(format!("cannot read the master key file {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_private_and_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let a = load_or_create_key_file(&path).unwrap();
        let b = load_or_create_key_file(&path).unwrap();
        assert_eq!(a.id(), b.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn base64_must_hold_32_bytes() {
        assert!(MasterKey::from_base64("c2hvcnQ=").unwrap_err().contains("32 bytes"));
        assert!(MasterKey::from_base64("!!").is_err());
        let k = MasterKey::generate();
        assert_eq!(MasterKey::from_base64(&k.to_base64()).unwrap().id(), k.id());
    }
}
