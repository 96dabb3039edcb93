//! Standard Webhooks signing of callback deliveries: the `whsec_` secrets, the
//! `v1,<base64 HMAC-SHA256>` signatures over `{id}.{timestamp}.{body}`, the three
//! `webhook-*` headers, and a constant-time verifier (for our own tests and tools).
//!
//! Several secrets can sign at once (rotation): the signature header then holds one
//! space-separated entry per secret, and a receiver accepts any entry it can verify.
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Header carrying the message id (stable across retries).
pub const WEBHOOK_ID: &str = "webhook-id";
/// Header carrying the attempt's unix timestamp in seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated `v1,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";
/// Smallest and largest accepted secret, in bytes (the Standard Webhooks recommendation).
pub const SECRET_MIN_LEN: usize = 24;
pub const SECRET_MAX_LEN: usize = 64;
/// Size of a generated secret in bytes.
const GENERATED_LEN: usize = 32;

/// Decodes secrets with or without `=` padding, as the reference libraries do.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type HmacSha256 = Hmac<Sha256>;

/// Why a secret was refused or a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The secret text is not base64 (after the optional `whsec_` prefix).
    #[error("webhook secret is not valid base64 (expected whsec_<base64>)")]
    SecretEncoding,
    /// The secret decodes to a length outside 24..=64 bytes (the length is given).
    #[error("webhook secret must be {SECRET_MIN_LEN} to {SECRET_MAX_LEN} bytes, got {0}")]
    SecretLength(usize),
    /// No secret was given to a signer.
    #[error("a webhook signer needs at least one secret")]
    NoSecret,
    /// No `v1` entry of the signature header matches any secret.
    #[error("no matching webhook signature")]
    NoMatch,
}

/// A Standard Webhooks signing secret. Its text form is `whsec_<base64>`; `Debug` never
/// shows it, and it is only revealed by [`WebhookSecret::expose`].
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
    mac: HmacSha256,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (the prefix is optional, padding too); the key must be 24 to
    /// 64 bytes. Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let text = text.trim();
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let key = SECRET_BASE64.decode(encoded).map_err(|_| SignatureError::SecretEncoding)?;
        Self::from_bytes(key)
    }

    /// A new secret of 32 random bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_LEN];
        rand::rng().fill_bytes(&mut key);
        Self::from_bytes(key).unwrap_or_else(|_| unreachable!("32 bytes is a valid length"))
    }

    fn from_bytes(key: Vec<u8>) -> Result<Self, SignatureError> {
        if !(SECRET_MIN_LEN..=SECRET_MAX_LEN).contains(&key.len()) {
            return Err(SignatureError::SecretLength(key.len()));
        }
        let mac = HmacSha256::new_from_slice(&key).map_err(|_| SignatureError::SecretLength(key.len()))?;
        Ok(Self { key, mac })
    }

    /// The secret's text form `whsec_<base64>`, to show the operator once or store in
    /// config. Never log it.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// `v1,<base64 HMAC-SHA256(key, "{msg_id}.{timestamp_secs}.{body}")>`.
    pub fn sign(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac_of(msg_id, timestamp_secs, body)))
    }

    fn mac_of(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl FromStr for WebhookSecret {
    type Err = SignatureError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Signs deliveries with one or more secrets (several during a rotation).
#[derive(Clone, Debug)]
pub struct WebhookSigner {
    secrets: Vec<WebhookSecret>,
}

impl WebhookSigner {
    /// A signer with these secrets, in the order their signatures appear.
    pub fn new(secrets: Vec<WebhookSecret>) -> Result<Self, SignatureError> {
        if secrets.is_empty() {
            return Err(SignatureError::NoSecret);
        }
        Ok(Self { secrets })
    }

    /// A signer with a single secret.
    pub fn single(secret: WebhookSecret) -> Self {
        Self { secrets: vec![secret] }
    }

    /// The first secret as text (`whsec_...`): the one shown to the operator.
    pub fn primary_secret(&self) -> String {
        self.secrets.first().map(WebhookSecret::expose).unwrap_or_default()
    }

    /// The `webhook-signature` value: one `v1,<base64>` entry per secret, space-separated.
    pub fn signature(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        let entries: Vec<String> = self.secrets.iter().map(|s| s.sign(msg_id, timestamp_secs, body)).collect();
        entries.join(" ")
    }

    /// The three headers of a delivery attempt: `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`, in that order.
    pub fn headers(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> [(&'static str, String); 3] {
        [
            (WEBHOOK_ID, msg_id.to_owned()),
            (WEBHOOK_TIMESTAMP, timestamp_secs.to_string()),
            (WEBHOOK_SIGNATURE, self.signature(msg_id, timestamp_secs, body)),
        ]
    }

    /// Checks a `webhook-signature` header value: succeeds when any `v1` entry matches any
    /// of the signer's secrets (compared in constant time). Entries of other versions and
    /// malformed entries are skipped. Timestamp freshness is the caller's business.
    pub fn verify(
        &self,
        msg_id: &str,
        timestamp_secs: i64,
        body: &[u8],
        signature_header: &str,
    ) -> Result<(), SignatureError> {
        let expected: Vec<[u8; 32]> = self.secrets.iter().map(|s| s.mac_of(msg_id, timestamp_secs, body)).collect();
        let candidates = signature_header
            .split_ascii_whitespace()
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|encoded| STANDARD.decode(encoded).ok());
        for candidate in candidates {
            let mut matched = subtle::Choice::from(0);
            for mac in &expected {
                matched |= mac.as_slice().ct_eq(&candidate);
            }
            if bool::from(matched) {
                return Ok(());
            }
        }
        Err(SignatureError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's published example (also in the Svix docs on
    // verifying payloads manually), and reproduced with Python's `standardwebhooks` 1.1.0.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn spec_secret() -> WebhookSecret {
        WebhookSecret::parse(SPEC_SECRET).unwrap()
    }

    #[test]
    fn reproduces_the_spec_example() {
        assert_eq!(spec_secret().sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIGNATURE);
        let signer = WebhookSigner::single(spec_secret());
        assert_eq!(
            signer.headers(SPEC_ID, SPEC_TS, SPEC_BODY),
            [
                ("webhook-id", SPEC_ID.to_owned()),
                ("webhook-timestamp", "1614265330".to_owned()),
                ("webhook-signature", SPEC_SIGNATURE.to_owned()),
            ]
        );
        assert_eq!(signer.verify(SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIGNATURE), Ok(()));
    }

    #[test]
    fn secrets_parse_with_or_without_prefix_and_padding() {
        let bare = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(bare.sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIGNATURE);
        assert_eq!(spec_secret().expose(), SPEC_SECRET);
        let generated = WebhookSecret::generate();
        let text = generated.expose();
        assert!(text.starts_with("whsec_"));
        let unpadded = text.trim_end_matches('=');
        assert_eq!(WebhookSecret::parse(unpadded).unwrap().expose(), text);
        assert_ne!(WebhookSecret::generate().expose(), text);
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert_eq!(WebhookSecret::parse("whsec_not base64!").unwrap_err(), SignatureError::SecretEncoding);
        assert_eq!(WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err(), SignatureError::SecretLength(5));
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert_eq!(WebhookSecret::parse(&long).unwrap_err(), SignatureError::SecretLength(65));
        assert_eq!(WebhookSigner::new(vec![]).unwrap_err(), SignatureError::NoSecret);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = spec_secret();
        let shown = format!("{secret:?} {:?}", WebhookSigner::single(secret.clone()));
        assert!(!shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn rotation_signs_with_every_secret_and_verifies_with_any() {
        let new = WebhookSecret::generate();
        let both = WebhookSigner::new(vec![new.clone(), spec_secret()]).unwrap();
        let header = both.signature(SPEC_ID, SPEC_TS, SPEC_BODY);
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries, [new.sign(SPEC_ID, SPEC_TS, SPEC_BODY).as_str(), SPEC_SIGNATURE]);
        // A receiver that only knows the old secret still verifies.
        let old_only = WebhookSigner::single(spec_secret());
        assert_eq!(old_only.verify(SPEC_ID, SPEC_TS, SPEC_BODY, &header), Ok(()));
        let new_only = WebhookSigner::single(new);
        assert_eq!(new_only.verify(SPEC_ID, SPEC_TS, SPEC_BODY, &header), Ok(()));
    }

    #[test]
    fn verify_refuses_any_change() {
        let signer = WebhookSigner::single(spec_secret());
        let ok = |id: &str, ts: i64, body: &[u8], sig: &str| signer.verify(id, ts, body, sig);
        assert_eq!(ok(SPEC_ID, SPEC_TS, br#"{"test": 2432232315}"#, SPEC_SIGNATURE), Err(SignatureError::NoMatch));
        assert_eq!(ok("msg_other", SPEC_TS, SPEC_BODY, SPEC_SIGNATURE), Err(SignatureError::NoMatch));
        assert_eq!(ok(SPEC_ID, SPEC_TS + 1, SPEC_BODY, SPEC_SIGNATURE), Err(SignatureError::NoMatch));
        let other = WebhookSigner::single(WebhookSecret::generate());
        assert_eq!(other.verify(SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIGNATURE), Err(SignatureError::NoMatch));
        // Other versions, garbage and truncated signatures are skipped, not errors.
        let v2 = SPEC_SIGNATURE.replacen("v1,", "v2,", 1);
        assert_eq!(ok(SPEC_ID, SPEC_TS, SPEC_BODY, &v2), Err(SignatureError::NoMatch));
        assert_eq!(ok(SPEC_ID, SPEC_TS, SPEC_BODY, "v1,@@@ v1,AAAA"), Err(SignatureError::NoMatch));
        assert_eq!(ok(SPEC_ID, SPEC_TS, SPEC_BODY, ""), Err(SignatureError::NoMatch));
        let mixed = format!("v1a,xyz {SPEC_SIGNATURE}");
        assert_eq!(ok(SPEC_ID, SPEC_TS, SPEC_BODY, &mixed), Ok(()));
    }
}
