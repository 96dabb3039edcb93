//! Per-device body encryption: the Cams-compatible AES-256-ECB mode, the recommended
//! AES-256-GCM mode, and the heuristic that tells an encrypted body from a plain one.
//!
//! A device is in one [`EncryptionMode`]; its [`BodyCipher`] turns every body exchanged with
//! it into wire text and back. Both encrypted modes use the device's 32-character security
//! key ([`SecurityKey`]) as raw key bytes. Errors are typed ([`CryptoError`]); the two
//! mode-mismatch errors are the ones the gateway answers with Cams StatusCode 19.
mod cipher;
mod ecb;
mod gcm;
mod key;
mod text;

pub use cipher::{BodyCipher, EncryptionMode};
pub use key::{SECURITY_KEY_LEN, SecurityKey};
pub use text::{looks_encrypted, looks_plain_json};

/// Why a body could not be encrypted or decrypted, or a key not accepted.
///
/// Messages never contain key material or body bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The security key is not exactly 32 bytes (the length in bytes is given).
    #[error("security key must be exactly {SECURITY_KEY_LEN} bytes of UTF-8, got {0} bytes")]
    KeyLength(usize),
    /// An encrypted mode was chosen without a security key.
    #[error("encryption mode {0} needs a security key")]
    MissingKey(EncryptionMode),
    /// A plain-mode device sent a body that looks encrypted (Cams StatusCode 19).
    #[error("body looks encrypted but the device is in plain mode")]
    EncryptedBodyForPlainDevice,
    /// An encrypted-mode device sent a plain JSON body (Cams StatusCode 19).
    #[error("body is plain JSON but the device is in {0} mode")]
    PlainBodyForEncryptedDevice(EncryptionMode),
    /// The body is not base64 text (optionally JSON-quoted).
    #[error("encrypted body is not valid base64 text")]
    Base64,
    /// The body decoded to nothing.
    #[error("encrypted body is empty")]
    Empty,
    /// The ECB ciphertext is not a whole number of 16-byte blocks.
    #[error("ciphertext of {0} bytes is not a whole number of AES blocks")]
    BlockLength(usize),
    /// ECB decryption produced invalid PKCS#7 padding: wrong key or corrupted body.
    #[error("decryption failed (bad padding): wrong key or corrupted body")]
    Padding,
    /// A GCM body does not start with the supported version prefix (`v1.`).
    #[error("AES-GCM body must start with the version prefix \"v1.\"")]
    Version,
    /// A GCM body is shorter than nonce plus tag (the length in bytes is given).
    #[error("AES-GCM body of {0} bytes is shorter than nonce and tag")]
    TooShort(usize),
    /// GCM authentication failed: wrong key, or the body was altered.
    #[error("authenticated decryption failed: wrong key or tampered body")]
    Authentication,
    /// The plaintext is larger than the mode can encrypt (AES-GCM: 64 GiB).
    #[error("plaintext too large to encrypt")]
    TooLarge,
}

impl CryptoError {
    /// Whether the error means "the body's form does not match the device's mode", which
    /// the Cams contract answers with StatusCode 19 (`API_RESPONSE_INVALID_RAW_DATA`).
    pub fn is_mode_mismatch(&self) -> bool {
        matches!(self, CryptoError::EncryptedBodyForPlainDevice | CryptoError::PlainBodyForEncryptedDevice(_))
    }
}
