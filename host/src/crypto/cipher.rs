//! A device's encryption mode and the cipher that applies it to bodies in both directions.
use std::fmt;

use serde::{Deserialize, Serialize};

use super::text::{looks_encrypted, looks_plain_json};
use super::{CryptoError, SecurityKey, ecb, gcm};

/// How a device's bodies are protected (config value in kebab-case).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EncryptionMode {
    /// `"plain"`: JSON as is.
    #[default]
    Plain,
    /// `"cams-ecb"`: `base64(AES-256-ECB(PKCS7(json)))`, compatible with Cams devices.
    CamsEcb,
    /// `"aes-gcm"`: `v1.` + `base64(nonce || ciphertext || tag)`, AES-256-GCM; recommended.
    AesGcm,
}

impl EncryptionMode {
    /// The config name (`plain`, `cams-ecb`, `aes-gcm`).
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionMode::Plain => "plain",
            EncryptionMode::CamsEcb => "cams-ecb",
            EncryptionMode::AesGcm => "aes-gcm",
        }
    }
}

impl fmt::Display for EncryptionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Encrypts and decrypts one device's bodies according to its mode. `Debug` shows the mode
/// only, never the key.
#[derive(Clone, Debug)]
pub struct BodyCipher(Inner);

#[derive(Clone, Debug)]
enum Inner {
    Plain,
    CamsEcb(SecurityKey),
    AesGcm(SecurityKey),
}

impl BodyCipher {
    /// No encryption.
    pub fn plain() -> Self {
        Self(Inner::Plain)
    }

    /// The Cams-compatible ECB mode.
    pub fn cams_ecb(key: SecurityKey) -> Self {
        Self(Inner::CamsEcb(key))
    }

    /// The authenticated AES-256-GCM mode.
    pub fn aes_gcm(key: SecurityKey) -> Self {
        Self(Inner::AesGcm(key))
    }

    /// Builds the cipher from configuration: the mode and the device's key text. The
    /// encrypted modes need a 32-byte key; `Plain` ignores the key.
    pub fn new(mode: EncryptionMode, key: Option<&str>) -> Result<Self, CryptoError> {
        let key = || key.ok_or(CryptoError::MissingKey(mode)).and_then(SecurityKey::from_text);
        Ok(match mode {
            EncryptionMode::Plain => Self::plain(),
            EncryptionMode::CamsEcb => Self::cams_ecb(key()?),
            EncryptionMode::AesGcm => Self::aes_gcm(key()?),
        })
    }

    /// The mode this cipher applies.
    pub fn mode(&self) -> EncryptionMode {
        match self.0 {
            Inner::Plain => EncryptionMode::Plain,
            Inner::CamsEcb(_) => EncryptionMode::CamsEcb,
            Inner::AesGcm(_) => EncryptionMode::AesGcm,
        }
    }

    /// The body text to send. `Plain` returns the plaintext as text (bodies are JSON, so
    /// valid UTF-8; invalid bytes would be replaced). Fails only for a GCM plaintext over
    /// 64 GiB ([`CryptoError::TooLarge`]).
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, CryptoError> {
        match &self.0 {
            Inner::Plain => Ok(String::from_utf8_lossy(plaintext).into_owned()),
            Inner::CamsEcb(key) => Ok(ecb::encrypt(key, plaintext)),
            Inner::AesGcm(key) => gcm::encrypt(key, plaintext),
        }
    }

    /// The plaintext of a received body. A body whose form does not match the mode (an
    /// encrypted-looking body in `Plain`, plain JSON in an encrypted mode) is refused with
    /// an error for which [`CryptoError::is_mode_mismatch`] holds (Cams StatusCode 19).
    /// `Plain` otherwise returns the body unchanged.
    pub fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.0 {
            Inner::Plain if looks_encrypted(body) => Err(CryptoError::EncryptedBodyForPlainDevice),
            Inner::Plain => Ok(body.to_vec()),
            _ if looks_plain_json(body) => Err(CryptoError::PlainBodyForEncryptedDevice(self.mode())),
            Inner::CamsEcb(key) => ecb::decrypt(key, body),
            Inner::AesGcm(key) => gcm::decrypt(key, body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "Cams3Key-32-bytes-for-biogate-t1";
    const JSON: &[u8] = br#"{"Add":{"User":{"UserID":"1"}}}"#;

    #[test]
    fn mode_serde_names_are_kebab_case() {
        for (mode, name) in [
            (EncryptionMode::Plain, "\"plain\""),
            (EncryptionMode::CamsEcb, "\"cams-ecb\""),
            (EncryptionMode::AesGcm, "\"aes-gcm\""),
        ] {
            assert_eq!(serde_json::to_string(&mode).unwrap(), name);
            assert_eq!(serde_json::from_str::<EncryptionMode>(name).unwrap(), mode);
            assert_eq!(format!("\"{mode}\""), name);
        }
        assert!(serde_json::from_str::<EncryptionMode>("\"ecb\"").is_err());
        assert_eq!(EncryptionMode::default(), EncryptionMode::Plain);
    }

    #[test]
    fn new_checks_the_key() {
        assert_eq!(BodyCipher::new(EncryptionMode::Plain, None).unwrap().mode(), EncryptionMode::Plain);
        assert_eq!(
            BodyCipher::new(EncryptionMode::CamsEcb, None).unwrap_err(),
            CryptoError::MissingKey(EncryptionMode::CamsEcb)
        );
        assert_eq!(BodyCipher::new(EncryptionMode::AesGcm, Some("too short")).unwrap_err(), CryptoError::KeyLength(9));
        let cipher = BodyCipher::new(EncryptionMode::AesGcm, Some(KEY)).unwrap();
        assert_eq!(cipher.mode(), EncryptionMode::AesGcm);
        let shown = format!("{cipher:?}");
        assert!(!shown.contains(KEY), "{shown}");
    }

    #[test]
    fn every_mode_round_trips() {
        for mode in [EncryptionMode::Plain, EncryptionMode::CamsEcb, EncryptionMode::AesGcm] {
            let cipher = BodyCipher::new(mode, Some(KEY)).unwrap();
            let text = cipher.encrypt(JSON).unwrap();
            assert_eq!(cipher.decrypt(text.as_bytes()).unwrap(), JSON, "{mode}");
            let quoted = format!("\"{text}\"");
            if mode != EncryptionMode::Plain {
                assert_eq!(cipher.decrypt(quoted.as_bytes()).unwrap(), JSON, "{mode}");
            }
        }
    }

    #[test]
    fn mode_mismatches_are_status_19_errors() {
        let plain = BodyCipher::plain();
        let ecb = BodyCipher::new(EncryptionMode::CamsEcb, Some(KEY)).unwrap();
        let gcm = BodyCipher::new(EncryptionMode::AesGcm, Some(KEY)).unwrap();

        let err = plain.decrypt(ecb.encrypt(JSON).unwrap().as_bytes()).unwrap_err();
        assert_eq!(err, CryptoError::EncryptedBodyForPlainDevice);
        assert!(err.is_mode_mismatch());
        let err = ecb.decrypt(b"  {\"a\":1}").unwrap_err();
        assert_eq!(err, CryptoError::PlainBodyForEncryptedDevice(EncryptionMode::CamsEcb));
        assert!(err.is_mode_mismatch());
        assert!(gcm.decrypt(b"[1]").unwrap_err().is_mode_mismatch());

        // Encrypted with the other mode: a decryption error, not a mismatch.
        assert_eq!(gcm.decrypt(ecb.encrypt(JSON).unwrap().as_bytes()), Err(CryptoError::Version));
        assert!(ecb.decrypt(gcm.encrypt(JSON).unwrap().as_bytes()).is_err());
    }

    #[test]
    fn plain_passes_non_json_through_for_the_parser_to_refuse() {
        assert_eq!(BodyCipher::plain().decrypt(b"a=1&b=2").unwrap(), b"a=1&b=2");
    }
}
