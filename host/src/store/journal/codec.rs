//! How an event is stored (the bytes of its log record), and the identity of a punch.
use crate::plugin::bindings::types::{Event, EventBody};
use crate::store::StoreError;

/// The first byte of an event stored compactly: postcard follows. Events stored by
/// earlier versions are JSON (they start with `{`) and are still read. postcard is not
/// self-describing: this byte is the schema version, and a change to the WIT `event`
/// type needs a new byte and a decoder for the old one (the golden test below fails
/// until then).
const COMPACT_EVENT: u8 = 1;

/// An event as stored: [`COMPACT_EVENT`] then postcard, about a fifth of its JSON.
pub(super) fn encode(event: &Event) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(event, vec![COMPACT_EVENT]).map_err(|e| StoreError::Decode(e.to_string()))
}

pub(super) fn decode(bytes: &[u8]) -> Result<Event, StoreError> {
    match bytes.split_first() {
        Some((&COMPACT_EVENT, rest)) => postcard::from_bytes(rest).map_err(|e| StoreError::Decode(e.to_string())),
        _ => serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string())),
    }
}

/// The log time of a punch (Unix seconds); other events have none.
pub(super) fn log_seconds(body: &EventBody) -> Option<i64> {
    match body {
        EventBody::Punch(p) => Some(p.log_time.unix_seconds),
        _ => None,
    }
}

/// The fingerprint of a punch's identity (user, log time, punch type: what makes a punch
/// sent twice the same punch), which the de-duplication cache keeps. A fingerprint found
/// is checked with [`same_punch`] against the stored event. Other events have none.
pub(super) fn fingerprint(body: &EventBody) -> Option<u64> {
    let EventBody::Punch(p) = body else {
        return None;
    };
    // Stored in the index: XXH3, whose output is specified (std's hasher may change with
    // the compiler), over a fixed layout.
    let mut bytes = Vec::with_capacity(9 + p.user_id.len());
    bytes.extend_from_slice(&p.log_time.unix_seconds.to_le_bytes());
    bytes.push(p.punch_type as u8);
    bytes.extend_from_slice(p.user_id.as_bytes());
    Some(xxhash_rust::xxh3::xxh3_64(&bytes))
}

/// Whether two events are the same punch: same user, log time and punch type.
pub(super) fn same_punch(a: &EventBody, b: &EventBody) -> bool {
    match (a, b) {
        (EventBody::Punch(a), EventBody::Punch(b)) => {
            a.user_id == b.user_id
                && a.log_time.unix_seconds == b.log_time.unix_seconds
                && a.punch_type as u8 == b.punch_type as u8
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::journal::tests::punch;

    /// The stored form of an event is a format: events written by this version must stay
    /// readable by later ones. If this fails, the event type changed: give the new form a
    /// new first byte, keep decoding this one, then update the bytes here.
    #[test]
    fn the_compact_event_form_is_stable() {
        let event = Event {
            id: "0192f4c3-7d1e-7a00-8000-000000000001".into(),
            device_id: "D1".into(),
            sequence: 3,
            received_at_ms: 1_750_000_000_000,
            body: punch("1042", 1_750_000_000),
        };
        let stored = encode(&event).expect("encode");
        assert_eq!(hex::encode(&stored), GOLDEN);
        assert_eq!(decode(&hex::decode(GOLDEN).expect("hex")).expect("decode"), event);
        // Events stored as JSON by earlier versions are still read.
        let json = serde_json::to_vec(&event).expect("json");
        assert_eq!(decode(&json).expect("decode"), event);
        assert!(stored.len() * 3 < json.len(), "{} bytes stored for {} bytes of JSON", stored.len(), json.len());
    }

    const GOLDEN: &str = "012430313932663463332d376431652d376130302d383030302d3030303030303030303030310244310380b883a1f7320004313034328086f7840d00000600000000";

    const GOLDEN_PRINT: u64 = 7_879_428_295_279_254_936;

    #[test]
    fn punches_are_the_same_when_user_time_and_type_are() {
        let a = punch("7", 500);
        assert!(same_punch(&a, &punch("7", 500)));
        assert_eq!(fingerprint(&a), fingerprint(&punch("7", 500)));
        // Fingerprints are stored in the index: the function must never change.
        assert_eq!(fingerprint(&a), Some(GOLDEN_PRINT));
        for other in [punch("7", 501), punch("70", 500)] {
            assert!(!same_punch(&a, &other));
            assert_ne!(fingerprint(&a), fingerprint(&other));
        }
    }
}
