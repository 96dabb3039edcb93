//! The Cams-compatible mode: `base64(AES-256-ECB(PKCS7(plaintext)))`, key used raw.
//!
//! ECB leaks equal plaintext blocks as equal ciphertext blocks and authenticates nothing;
//! it exists for compatibility with Cams devices and clients. Prefer AES-GCM.
use aes::Aes256;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyInit};

use super::text::{decode_base64, encode_base64, unwrap_body_text};
use super::{CryptoError, SecurityKey};

const BLOCK: usize = 16;

/// Encrypts to standard padded base64 text.
pub(super) fn encrypt(key: &SecurityKey, plaintext: &[u8]) -> String {
    let ciphertext = ecb::Encryptor::<Aes256>::new(key.bytes().into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    encode_base64(&ciphertext)
}

/// Decrypts base64 text (whitespace around, JSON quotes, missing padding and the URL-safe
/// alphabet are all accepted).
pub(super) fn decrypt(key: &SecurityKey, body: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let ciphertext = decode_base64(&unwrap_body_text(body)?)?;
    if ciphertext.len() % BLOCK != 0 {
        return Err(CryptoError::BlockLength(ciphertext.len()));
    }
    ecb::Decryptor::<Aes256>::new(key.bytes().into())
        .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext)
        .map_err(|_| CryptoError::Padding)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors produced independently with OpenSSL 3 on the development machine:
    //   KEY='Cams3Key-32-bytes-for-biogate-t1'
    //   printf %s "$PLAINTEXT" | openssl enc -aes-256-ecb -nosalt -base64 -A \
    //       -K "$(printf %s "$KEY" | xxd -p -c 64)"
    // and cross-checked with Python's `cryptography` package (AES + ECB + PKCS7 padder).
    const KEY: &str = "Cams3Key-32-bytes-for-biogate-t1";
    const PUNCH: &str = r#"{"RealTime":{"OperationID":"9nu1wak5616p","PunchLog":{"Type":"CheckOut","UserId":"2"}}}"#;
    const PUNCH_ECB: &str = "Wlb0F2n/GfshUSDO7t3P6k1ygAoZ9GLvLpiNavuMrjz0GbbevOe5tSu81Gf4yfak\
        3BjHyrS6o3tsS9Sv9Qn+Xke3H3B8nnQA3NeK6tAnOOnzK/ZWrQq8sxplABVaBde4";
    /// The empty plaintext: one block of PKCS#7 padding.
    const EMPTY_ECB: &str = "39SSZhcxWs9xq056KafmUA==";
    /// "0123456789abcdef": one data block, then the same padding block as above.
    const ONE_BLOCK_ECB: &str = "37qdZkdSflJJJlWc0ZK3vN/UkmYXMVrPcatOeimn5lA=";

    fn key() -> SecurityKey {
        SecurityKey::from_text(KEY).unwrap()
    }

    #[test]
    fn encrypts_like_openssl() {
        assert_eq!(encrypt(&key(), PUNCH.as_bytes()), PUNCH_ECB);
        assert_eq!(encrypt(&key(), b""), EMPTY_ECB);
        assert_eq!(encrypt(&key(), b"0123456789abcdef"), ONE_BLOCK_ECB);
    }

    #[test]
    fn decrypts_openssl_output() {
        assert_eq!(decrypt(&key(), PUNCH_ECB.as_bytes()).unwrap(), PUNCH.as_bytes());
        assert_eq!(decrypt(&key(), ONE_BLOCK_ECB.as_bytes()).unwrap(), b"0123456789abcdef");
    }

    #[test]
    fn accepts_quoted_padded_less_and_wrapped_text() {
        let quoted = format!("\n \"{}\" \r\n", PUNCH_ECB.replace('/', "\\/"));
        assert_eq!(decrypt(&key(), quoted.as_bytes()).unwrap(), PUNCH.as_bytes());
        let unpadded = ONE_BLOCK_ECB.trim_end_matches('=');
        assert_eq!(decrypt(&key(), unpadded.as_bytes()).unwrap(), b"0123456789abcdef");
        let url_safe = ONE_BLOCK_ECB.replace('+', "-").replace('/', "_");
        assert_eq!(decrypt(&key(), url_safe.as_bytes()).unwrap(), b"0123456789abcdef");
        let wrapped = format!("{}\r\n{}", &PUNCH_ECB[..64], &PUNCH_ECB[64..]);
        assert_eq!(decrypt(&key(), wrapped.as_bytes()).unwrap(), PUNCH.as_bytes());
    }

    #[test]
    fn round_trips() {
        for plaintext in [&b""[..], b"x", b"0123456789abcdef", "ünïcode {\"a\":[1,2]}".as_bytes()] {
            let text = encrypt(&key(), plaintext);
            assert_eq!(decrypt(&key(), text.as_bytes()).unwrap(), plaintext);
        }
    }

    #[test]
    fn wrong_key_fails_with_a_typed_error() {
        let other = SecurityKey::from_text("another-32-byte-key-for-testing!").unwrap();
        // A wrong key yields random padding bytes: almost always a padding error. This
        // vector was checked to be one.
        assert_eq!(decrypt(&other, PUNCH_ECB.as_bytes()), Err(CryptoError::Padding));
    }

    #[test]
    fn malformed_bodies_give_typed_errors() {
        assert_eq!(decrypt(&key(), b"not base64!"), Err(CryptoError::Base64));
        assert_eq!(decrypt(&key(), b"\"\""), Err(CryptoError::Empty));
        assert_eq!(decrypt(&key(), b"AAAA"), Err(CryptoError::BlockLength(3)));
    }
}
