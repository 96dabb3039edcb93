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

/// What makes two punches of a device the same punch sent twice: user, log time, punch
/// type. Other events are never duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Identity(Box<[u8]>);

impl Identity {
    pub fn of(body: &EventBody) -> Option<Identity> {
        let EventBody::Punch(p) = body else {
            return None;
        };
        let mut key = Vec::with_capacity(9 + p.user_id.len());
        key.extend_from_slice(&p.log_time.unix_seconds.to_be_bytes());
        key.push(p.punch_type as u8);
        key.extend_from_slice(p.user_id.as_bytes());
        Some(Identity(key.into_boxed_slice()))
    }

    /// A 64-bit fingerprint, what the de-duplication cache keeps (a hit is checked
    /// against the stored event, so two identities with one fingerprint are never taken
    /// for each other).
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        BuildHasherDefault::<DefaultHasher>::default().hash_one(&self.0)
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

    #[test]
    fn punches_are_the_same_when_user_time_and_type_are() {
        let a = Identity::of(&punch("7", 500)).expect("a punch");
        assert_eq!(Some(&a), Identity::of(&punch("7", 500)).as_ref());
        assert_ne!(Some(&a), Identity::of(&punch("7", 501)).as_ref());
        assert_ne!(Some(&a), Identity::of(&punch("70", 500)).as_ref());
        assert_eq!(a.fingerprint(), Identity::of(&punch("7", 500)).expect("a punch").fingerprint());
        assert_ne!(a.fingerprint(), Identity::of(&punch("7", 501)).expect("a punch").fingerprint());
    }
}
