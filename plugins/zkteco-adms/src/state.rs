//! What the plugin keeps in its kv store, per device (ids are percent-escaped in keys):
//!
//! | key                        | value                                                |
//! |----------------------------|------------------------------------------------------|
//! | `stamp/<dev>/<TABLE>`      | the `Stamp` of the last accepted upload of the table |
//! | `pri/<dev>/<pin>`          | the user's last known privilege (`Pri`)              |
//! | `info/<dev>`               | the last `INFO` of the device's polls                |
//! | `seq/<dev>`                | the next ADMS command id                             |
//! | `cmd/<dev>/<id>`           | `<parts>\t<operation id>`: the operation of a command id |
//! | `op/<dev>/<operation id>`  | the answers so far of an operation sent as several commands |
//! | `queue/<dev>/<id>`         | a command line taken from the gateway but not sent yet (caps) |
//!
//! Command ids are a per-device counter; the mapping of the last [`ID_WINDOW`] ids is
//! kept, older ones are deleted as new ones are assigned.

use biogate_sdk::prelude::*;

/// How many command ids of a device keep their mapping to an operation id.
pub(crate) const ID_WINDOW: u64 = 10_000;

/// The tables whose `Stamp` the plugin records.
pub(crate) const STAMP_TABLES: [&str; 4] = ["ATTLOG", "OPERLOG", "ATTPHOTO", "BIODATA"];

/// Escapes `/` and `%` so that an id is one key segment.
fn esc(id: &str) -> String {
    id.replace('%', "%25").replace('/', "%2F")
}

fn stamp_key(device: &str, table: &str) -> String {
    format!("stamp/{}/{table}", esc(device))
}

/// The recorded `Stamp` of `table`.
pub(crate) fn stamp(device: &str, table: &str) -> Result<Option<String>, KvError> {
    kv::get_string(&stamp_key(device, table))
}

/// Records the `Stamp` of an accepted upload.
pub(crate) fn set_stamp(device: &str, table: &str, stamp: &str) -> Result<(), KvError> {
    kv::set(&stamp_key(device, table), stamp)
}

fn pri_key(device: &str, pin: &str) -> String {
    format!("pri/{}/{}", esc(device), esc(pin))
}

/// The last privilege seen or sent for a user.
pub(crate) fn pri(device: &str, pin: &str) -> Result<Option<u32>, KvError> {
    Ok(kv::get_string(&pri_key(device, pin))?.and_then(|v| v.trim().parse().ok()))
}

/// Records a user's privilege.
pub(crate) fn set_pri(device: &str, pin: &str, pri: u32) -> Result<(), KvError> {
    kv::set(&pri_key(device, pin), pri.to_string())
}

/// Forgets a deleted user's privilege.
pub(crate) fn forget_pri(device: &str, pin: &str) -> Result<(), KvError> {
    kv::delete(&pri_key(device, pin))
}

fn info_key(device: &str) -> String {
    format!("info/{}", esc(device))
}

/// The last `INFO` a poll carried.
pub(crate) fn last_info(device: &str) -> Result<Option<String>, KvError> {
    kv::get_string(&info_key(device))
}

/// Records the `INFO` of a poll.
pub(crate) fn set_last_info(device: &str, info: &str) -> Result<(), KvError> {
    kv::set(&info_key(device), info)
}

fn seq_key(device: &str) -> String {
    format!("seq/{}", esc(device))
}

/// The next command id of the device (1 for a new device).
pub(crate) fn next_command_id(device: &str) -> Result<u64, KvError> {
    Ok(kv::get_string(&seq_key(device))?.and_then(|v| v.trim().parse().ok()).unwrap_or(1).max(1))
}

/// Records the next command id.
pub(crate) fn set_next_command_id(device: &str, next: u64) -> Result<(), KvError> {
    kv::set(&seq_key(device), next.to_string())
}

fn cmd_key(device: &str, id: u64) -> String {
    format!("cmd/{}/{id}", esc(device))
}

/// The operation a command id belongs to, and how many commands it was sent as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) operation_id: String,
    pub(crate) parts: u32,
}

/// Records that command `id` belongs to `sent`, and forgets the id [`ID_WINDOW`] older.
pub(crate) fn remember(device: &str, id: u64, sent: &Sent) -> Result<(), KvError> {
    if let Some(old) = id.checked_sub(ID_WINDOW).filter(|old| *old > 0) {
        if let Some(previous) = lookup(device, old)?
            && previous.parts > 1
        {
            kv::delete(&op_key(device, &previous.operation_id))?;
        }
        kv::delete(&cmd_key(device, old))?;
    }
    kv::set(&cmd_key(device, id), format!("{}\t{}", sent.parts, sent.operation_id))
}

/// The operation of command `id`, if the plugin sent it (recently enough).
pub(crate) fn lookup(device: &str, id: u64) -> Result<Option<Sent>, KvError> {
    let Some(value) = kv::get_string(&cmd_key(device, id))? else {
        return Ok(None);
    };
    Ok(value
        .split_once('\t')
        .and_then(|(parts, op)| Some(Sent { operation_id: op.to_owned(), parts: parts.parse().ok()? })))
}

fn op_key(device: &str, operation_id: &str) -> String {
    format!("op/{}/{}", esc(device), esc(operation_id))
}

/// The answers so far of an operation sent as several commands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The command ids that have answered.
    pub(crate) answered: Vec<u64>,
    /// The first non-zero return code, or 0.
    pub(crate) code: i32,
    /// The details of the first failed command.
    pub(crate) details: Vec<(String, String)>,
}

impl Progress {
    fn encode(&self) -> String {
        let ids: Vec<String> = self.answered.iter().map(u64::to_string).collect();
        let mut out = format!("{}\t{}", self.code, ids.join(","));
        for (k, v) in &self.details {
            out.push('\n');
            out.push_str(&k.replace(['\t', '\n'], " "));
            out.push('\t');
            out.push_str(&v.replace(['\t', '\n'], " "));
        }
        out
    }

    fn decode(text: &str) -> Option<Self> {
        let mut lines = text.split('\n');
        let (code, ids) = lines.next()?.split_once('\t')?;
        let answered = ids.split(',').filter(|s| !s.is_empty()).map(str::parse).collect::<Result<_, _>>().ok()?;
        let details = lines.filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        Some(Self { answered, code: code.parse().ok()?, details })
    }
}

/// The progress of an operation; `None` when none is recorded (complete, or never sent
/// as several commands).
pub(crate) fn progress(device: &str, operation_id: &str) -> Result<Option<Progress>, KvError> {
    Ok(kv::get_string(&op_key(device, operation_id))?.and_then(|v| Progress::decode(&v)))
}

/// Records the progress of an operation.
pub(crate) fn set_progress(device: &str, operation_id: &str, p: &Progress) -> Result<(), KvError> {
    kv::set(&op_key(device, operation_id), p.encode())
}

/// Forgets the progress of a complete operation.
pub(crate) fn forget_progress(device: &str, operation_id: &str) -> Result<(), KvError> {
    kv::delete(&op_key(device, operation_id))
}

fn queue_prefix(device: &str) -> String {
    format!("queue/{}/", esc(device))
}

/// Queues a command line that did not fit in a reply (`id` orders the queue).
pub(crate) fn queue_push(device: &str, id: u64, line: &str) -> Result<(), KvError> {
    kv::set(&format!("{}{id:020}", queue_prefix(device)), line)
}

/// The oldest queued lines, at most `limit`, with their keys.
pub(crate) fn queued(device: &str, limit: u32) -> Result<Vec<(String, String)>, KvError> {
    let mut out = Vec::new();
    for key in kv::list_keys(&queue_prefix(device), limit)? {
        if let Some(line) = kv::get_string(&key)? {
            out.push((key, line));
        }
    }
    Ok(out)
}

/// Removes a sent line from the queue.
pub(crate) fn unqueue(key: &str) -> Result<(), KvError> {
    kv::delete(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use biogate_sdk::testing;

    #[test]
    fn ids_map_back_and_old_ones_are_forgotten() {
        let sent = Sent { operation_id: "op/1".into(), parts: 2 };
        remember("D/1", 1, &sent).unwrap();
        set_progress("D/1", "op/1", &Progress::default()).unwrap();
        assert_eq!(lookup("D/1", 1).unwrap(), Some(sent.clone()));
        assert!(testing::kv_entries().contains_key("cmd/D%2F1/1"));
        remember("D/1", 1 + ID_WINDOW, &sent).unwrap();
        assert_eq!(lookup("D/1", 1).unwrap(), None);
        assert_eq!(progress("D/1", "op/1").unwrap(), None);
        assert!(lookup("D/1", 1 + ID_WINDOW).unwrap().is_some());
    }

    #[test]
    fn progress_round_trips() {
        let p = Progress { answered: vec![3, 4], code: -10, details: vec![("CMD".into(), "DATA\tx".into())] };
        set_progress("D", "op", &p).unwrap();
        let back = progress("D", "op").unwrap().unwrap();
        assert_eq!(back.answered, vec![3, 4]);
        assert_eq!(back.code, -10);
        assert_eq!(back.details, vec![("CMD".to_owned(), "DATA x".to_owned())]);
    }

    #[test]
    fn queue_is_fifo() {
        queue_push("D", 10, "C:10:INFO").unwrap();
        queue_push("D", 9, "C:9:CLEAR LOG").unwrap();
        queue_push("E", 1, "C:1:REBOOT").unwrap();
        let lines: Vec<String> = queued("D", 10).unwrap().into_iter().map(|(_, l)| l).collect();
        assert_eq!(lines, vec!["C:9:CLEAR LOG", "C:10:INFO"]);
        let (key, _) = &queued("D", 1).unwrap()[0];
        unqueue(key).unwrap();
        assert_eq!(queued("D", 10).unwrap().len(), 1);
    }
}
