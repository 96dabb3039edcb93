//! The recommended mode: AES-256-GCM with a random 96-bit nonce per body.
//!
//! Wire form: `v1.` followed by standard padded base64 of `nonce (12 bytes) || ciphertext ||
//! tag (16 bytes)`, no associated data. The key is the device's 32-byte security key used
//! raw, like the ECB mode (no HKDF: the `hkdf` crate is not a dependency). The `v1.` prefix
//! makes the mode self-describing and leaves room for a derived-key `v2.` later. Decryption
//! accepts the same text variations as the ECB mode (quotes, whitespace, missing padding,
//! URL-safe alphabet) after the prefix.
use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use rand::RngCore;

use super::text::{decode_base64, encode_base64, unwrap_body_text};
use super::{CryptoError, SecurityKey};

/// The version prefix of the wire form.
const PREFIX: &[u8] = b"v1.";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Encrypts with a fresh random nonce.
pub(super) fn encrypt(key: &SecurityKey, plaintext: &[u8]) -> Result<String, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    encrypt_with_nonce(key, &nonce, plaintext)
}

fn encrypt_with_nonce(key: &SecurityKey, nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Result<String, CryptoError> {
    let sealed = Aes256Gcm::new(key.bytes().into())
        .encrypt(Nonce::from_slice(nonce), plaintext)
        .map_err(|_| CryptoError::TooLarge)?;
    let mut wire = Vec::with_capacity(NONCE_LEN + sealed.len());
    wire.extend_from_slice(nonce);
    wire.extend_from_slice(&sealed);
    Ok(format!("v1.{}", encode_base64(&wire)))
}

/// Decrypts and authenticates the wire form.
pub(super) fn decrypt(key: &SecurityKey, body: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let text = unwrap_body_text(body)?;
    let encoded = text.strip_prefix(PREFIX).ok_or(CryptoError::Version)?;
    let wire = decode_base64(encoded)?;
    if wire.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::TooShort(wire.len()));
    }
    let (nonce, sealed) = wire.split_at(NONCE_LEN);
    Aes256Gcm::new(key.bytes().into())
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map_err(|_| CryptoError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vector produced independently with Python's `cryptography` package:
    //   AESGCM(b"Cams3Key-32-bytes-for-biogate-t1").encrypt(bytes(range(12)),
    //       b'{"UserID":"1042"}', None)
    // then base64(nonce || result) with the "v1." prefix added.
    const KEY: &str = "Cams3Key-32-bytes-for-biogate-t1";
    const PLAINTEXT: &[u8] = br#"{"UserID":"1042"}"#;
    const VECTOR: &str = "v1.AAECAwQFBgcICQoL3agcQhlHy00d6AUFoBgUGjPM6CUa1eKeY/aqXcCYa9F6";

    fn key() -> SecurityKey {
        SecurityKey::from_text(KEY).unwrap()
    }

    fn fixed_nonce() -> [u8; NONCE_LEN] {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn matches_the_independent_vector() {
        assert_eq!(encrypt_with_nonce(&key(), &fixed_nonce(), PLAINTEXT).unwrap(), VECTOR);
        assert_eq!(decrypt(&key(), VECTOR.as_bytes()).unwrap(), PLAINTEXT);
    }

    #[test]
    fn round_trips_with_fresh_nonces() {
        let a = encrypt(&key(), PLAINTEXT).unwrap();
        let b = encrypt(&key(), PLAINTEXT).unwrap();
        assert_ne!(a, b, "each body gets its own nonce");
        assert_eq!(decrypt(&key(), a.as_bytes()).unwrap(), PLAINTEXT);
        assert_eq!(decrypt(&key(), b.as_bytes()).unwrap(), PLAINTEXT);
        let empty = encrypt(&key(), b"").unwrap();
        assert_eq!(decrypt(&key(), empty.as_bytes()).unwrap(), b"");
    }

    #[test]
    fn accepts_quoted_text() {
        let quoted = format!(" \"{}\"\n", VECTOR.replace('/', "\\/"));
        assert_eq!(decrypt(&key(), quoted.as_bytes()).unwrap(), PLAINTEXT);
    }

    #[test]
    fn wrong_key_fails() {
        let other = SecurityKey::from_text("another-32-byte-key-for-testing!").unwrap();
        assert_eq!(decrypt(&other, VECTOR.as_bytes()), Err(CryptoError::Authentication));
    }

    #[test]
    fn tampering_fails() {
        let wire = decode_base64(&VECTOR.as_bytes()[PREFIX.len()..]).unwrap();
        for at in [0, NONCE_LEN, wire.len() - 1] {
            let mut tampered = wire.clone();
            tampered[at] ^= 0x01;
            let text = format!("v1.{}", encode_base64(&tampered));
            assert_eq!(decrypt(&key(), text.as_bytes()), Err(CryptoError::Authentication));
        }
    }

    #[test]
    fn malformed_bodies_give_typed_errors() {
        assert_eq!(decrypt(&key(), &VECTOR.as_bytes()[3..]), Err(CryptoError::Version));
        assert_eq!(decrypt(&key(), b"v2.AAAA"), Err(CryptoError::Version));
        assert_eq!(decrypt(&key(), b"v1.@@@@"), Err(CryptoError::Base64));
        assert_eq!(decrypt(&key(), b"v1.AAECAwQF"), Err(CryptoError::TooShort(6)));
    }
}
