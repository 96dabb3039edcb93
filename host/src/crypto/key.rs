//! The per-device security key: 32 bytes taken verbatim from the 32-character key text.
use std::fmt;
use std::str::FromStr;

use super::CryptoError;

/// Length of a security key in bytes (AES-256).
pub const SECURITY_KEY_LEN: usize = 32;

/// A device's security key: the UTF-8 bytes of its 32-character key text, used as the
/// raw AES-256 key (no derivation, as Cams does). `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecurityKey([u8; SECURITY_KEY_LEN]);

impl SecurityKey {
    /// Takes the key text's UTF-8 bytes; they must be exactly 32 bytes (so a 32-character
    /// key with non-ASCII characters is refused). Nothing is trimmed.
    pub fn from_text(text: &str) -> Result<Self, CryptoError> {
        Self::from_bytes(text.as_bytes())
    }

    /// Takes exactly 32 raw key bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        <[u8; SECURITY_KEY_LEN]>::try_from(bytes).map(Self).map_err(|_| CryptoError::KeyLength(bytes.len()))
    }

    pub(super) fn bytes(&self) -> &[u8; SECURITY_KEY_LEN] {
        &self.0
    }
}

impl FromStr for SecurityKey {
    type Err = CryptoError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_text(text)
    }
}

impl fmt::Debug for SecurityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecurityKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_32_bytes_are_accepted() {
        assert!(SecurityKey::from_text("Cams3Key-32-bytes-for-biogate-t1").is_ok());
        assert_eq!(SecurityKey::from_text("short"), Err(CryptoError::KeyLength(5)));
        let long = "x".repeat(33);
        assert_eq!(SecurityKey::from_text(&long), Err(CryptoError::KeyLength(33)));
        // 32 characters, but 33 bytes of UTF-8.
        let accented = format!("é{}", "x".repeat(31));
        assert_eq!(accented.chars().count(), 32);
        assert_eq!(SecurityKey::from_text(&accented), Err(CryptoError::KeyLength(33)));
    }

    #[test]
    fn debug_redacts_the_key() {
        let key: SecurityKey = "Cams3Key-32-bytes-for-biogate-t1".parse().unwrap();
        let shown = format!("{key:?}");
        assert_eq!(shown, "SecurityKey(<redacted>)");
        assert!(!shown.contains("Cams3Key"));
    }
}
