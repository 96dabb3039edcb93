//! The last accepted punch of a (device, user), as kept in the plugin's kv store.

use biogate_sdk::prelude::*;

/// The facts about an accepted punch that later punches are compared with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LastPunch {
    /// The punch's log time (device clock), seconds since the Unix epoch.
    pub(crate) unix_seconds: i64,
    pub(crate) punch_type: PunchType,
    /// The id of the event that carried the punch.
    pub(crate) event_id: String,
}

/// The kv key for a (device, user). `/` and `%` are escaped so that ids containing a `/`
/// cannot collide.
pub(crate) fn key(device_id: &str, user_id: &str) -> String {
    format!("last/{}/{}", escape(device_id), escape(user_id))
}

fn escape(id: &str) -> String {
    id.replace('%', "%25").replace('/', "%2F")
}

impl LastPunch {
    /// The facts of `punch`, carried by the event `event_id`.
    pub(crate) fn of(event_id: &str, punch: &Punch) -> Self {
        Self { unix_seconds: punch.log_time.unix_seconds, punch_type: punch.punch_type, event_id: event_id.to_owned() }
    }

    /// The record under `key`. An unreadable record (e.g. written by a future version) is
    /// logged and treated as absent: the punch passes rather than being lost.
    pub(crate) fn load(key: &str) -> Result<Option<Self>, KvError> {
        let Some(raw) = kv::get_string(key)? else {
            return Ok(None);
        };
        let record = Self::decode(&raw);
        if record.is_none() {
            warn!(key = key; "ignoring an unreadable last-punch record");
        }
        Ok(record)
    }

    /// Stores the record under `key`.
    pub(crate) fn store(&self, key: &str) -> Result<(), KvError> {
        kv::set(key, self.encode())
    }

    /// `<unix seconds>|<punch type>|<event id>` (the id last: it may contain `|`).
    fn encode(&self) -> String {
        format!("{}|{}|{}", self.unix_seconds, self.punch_type, self.event_id)
    }

    fn decode(raw: &str) -> Option<Self> {
        let mut parts = raw.splitn(3, '|');
        Some(Self {
            unix_seconds: parts.next()?.parse().ok()?,
            punch_type: parts.next()?.parse().ok()?,
            event_id: parts.next()?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
        let record = LastPunch { unix_seconds: -5, punch_type: PunchType::MealOut, event_id: "a|b".into() };
        assert_eq!(LastPunch::decode(&record.encode()), Some(record));
        assert_eq!(LastPunch::decode("12|lunch|x"), None);
        assert_eq!(LastPunch::decode("garbage"), None);
    }

    #[test]
    fn keys_do_not_collide() {
        assert_ne!(key("a/b", "c"), key("a", "b/c"));
        assert_ne!(key("a%2Fb", "c"), key("a/b", "c"));
    }
}
