//! The text around ciphertext: telling encrypted bodies from plain JSON, unwrapping
//! JSON-quoted base64, and decoding base64 leniently (padding optional, URL-safe accepted,
//! line breaks ignored).
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::CryptoError;

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Whether the body is plain JSON: its first non-whitespace byte is `{` or `[`.
pub fn looks_plain_json(body: &[u8]) -> bool {
    matches!(body.trim_ascii_start().first(), Some(b'{' | b'['))
}

/// Whether the body looks like an encrypted body: non-empty base64 text (either alphabet,
/// padding optional, line breaks allowed, a `v1.` style prefix allowed), possibly wrapped in
/// JSON quotes. Plain JSON objects and arrays, empty bodies and form data answer false.
/// A heuristic for choosing the error (Cams StatusCode 19), not a validation.
pub fn looks_encrypted(body: &[u8]) -> bool {
    let text = body.trim_ascii();
    let inner = match text {
        [b'"', inner @ .., b'"'] => inner.trim_ascii(),
        _ => text,
    };
    !inner.is_empty() && inner.iter().all(|&b| is_base64_text_byte(b))
}

fn is_base64_text_byte(b: u8) -> bool {
    // `\` because JSON encoders may write `/` as `\/`; `.` for a version prefix.
    b.is_ascii_alphanumeric() || b"+/=-_.\\".contains(&b) || b.is_ascii_whitespace()
}

/// The compact text of an encrypted body: surrounding whitespace removed, JSON quotes (and
/// the escapes inside them) undone, and inner ASCII whitespace (line breaks) dropped.
pub(super) fn unwrap_body_text(body: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let text = body.trim_ascii();
    let compact = |t: &[u8]| -> Vec<u8> { t.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect() };
    if text.first() == Some(&b'"') {
        let unquoted: String = serde_json::from_slice(text).map_err(|_| CryptoError::Base64)?;
        Ok(compact(unquoted.as_bytes()))
    } else {
        Ok(compact(text))
    }
}

/// Decodes compact base64 text: standard or URL-safe alphabet, with or without padding.
pub(super) fn decode_base64(text: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let url_safe = text.iter().any(|b| matches!(b, b'-' | b'_'));
    let engine = if url_safe { &URL_SAFE_LENIENT } else { &STANDARD_LENIENT };
    let bytes = engine.decode(text).map_err(|_| CryptoError::Base64)?;
    if bytes.is_empty() {
        return Err(CryptoError::Empty);
    }
    Ok(bytes)
}

/// Standard base64 with padding, the form biogate emits.
pub(super) fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_is_not_encrypted() {
        for body in [&b"{\"a\":1}"[..], b"  \n[1,2]", b"\t{}"] {
            assert!(looks_plain_json(body));
            assert!(!looks_encrypted(body));
        }
    }

    #[test]
    fn base64_text_looks_encrypted() {
        for body in [
            &b"39SSZhcxWs9xq056KafmUA=="[..],
            b"  39SSZhcxWs9xq056KafmUA==\r\n",
            b"\"39SSZhcxWs9xq056KafmUA==\"",
            b"\"ab\\/cd\"",
            b"v1.AAECAwQFBgcICQoL",
            b"ab-_cd",
        ] {
            assert!(looks_encrypted(body), "{:?}", String::from_utf8_lossy(body));
            assert!(!looks_plain_json(body));
        }
    }

    #[test]
    fn empty_and_form_bodies_are_neither() {
        for body in [&b""[..], b"   ", b"\"\"", b"stgid=1&userid=2", b"request_data={\"a\":1}"] {
            assert!(!looks_encrypted(body), "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn unwrap_handles_quotes_escapes_and_line_breaks() {
        assert_eq!(unwrap_body_text(b" \"ab\\/c+d=\" \n").unwrap(), b"ab/c+d=");
        assert_eq!(unwrap_body_text(b"abcd\r\nefgh\n").unwrap(), b"abcdefgh");
        assert_eq!(unwrap_body_text(b"\"abc"), Err(CryptoError::Base64));
    }

    #[test]
    fn decode_is_lenient_about_padding_and_alphabet() {
        // 0xfb 0xff encodes to "+/8=" (standard) and "-_8" (URL-safe, unpadded).
        assert_eq!(decode_base64(b"+/8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode_base64(b"+/8").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode_base64(b"-_8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode_base64(b"-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode_base64(b"a*b="), Err(CryptoError::Base64));
        assert_eq!(decode_base64(b""), Err(CryptoError::Empty));
    }
}
