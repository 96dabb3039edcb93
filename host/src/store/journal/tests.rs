//! The journal against a real sled database and a real event log in a temporary folder.
use super::*;
use crate::store::Store;

pub(in crate::store::journal) use crate::plugin::bindings::test_punch as punch;

fn user_of(event: &Event) -> &str {
    match &event.body {
        EventBody::Punch(p) => &p.user_id,
        _ => "",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_read_back_by_sequence_and_by_log_time_and_repeats_are_recognised() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let journal = store.journal().expect("journal");
    let first =
        journal.append("D1", vec![punch("1", 7300), punch("2", 100), punch("1", 7300)], 5).await.expect("append");
    assert_eq!(first.stored(), 2, "a repeat inside one append is one punch");
    assert_eq!(first.events[2], (first.events[0].0.clone(), 1, true));
    let second = journal.append("D1", vec![punch("3", 3700), punch("2", 100)], 6).await.expect("append");
    assert_eq!(second.events[1], (first.events[1].0.clone(), 2, true), "a stored punch is found again");
    assert_eq!(second.events[0].1, 3);
    assert_eq!(journal.last_seq("D1").expect("last"), 3);
    let read: Vec<u64> = journal.read("D1", 0, 3, 10).expect("read").iter().map(|e| e.sequence).collect();
    assert_eq!(read, [1, 2, 3]);
    assert_eq!(journal.read("D1", 1, 2, 10).expect("read").len(), 1, "bounded by after and upto");
    assert_eq!(journal.read("D1", 0, 3, 2).expect("read").len(), 2, "bounded by limit");
    let by_time: Vec<String> = journal
        .punches("D1", 0, 10_000, None, u64::MAX, 10)
        .expect("punches")
        .iter()
        .map(|e| user_of(e).to_string())
        .collect();
    assert_eq!(by_time, ["2", "3", "1"]);
    let after = PunchCursor { unix_seconds: 100, sequence: 2 };
    let rest = journal.punches("D1", 0, 10_000, Some(after), u64::MAX, 1).expect("punches");
    assert_eq!(rest.iter().map(user_of).collect::<Vec<_>>(), ["3"]);
    assert_eq!(journal.count_punches("D1", 0, 10_000).expect("count"), 3);
    assert_eq!(journal.count_punches("D1", 100, 3700).expect("count"), 2, "edges inclusive, partial hours read");
    assert_eq!(journal.count_punches("D1", 3600, 7199).expect("count"), 1, "a whole hour from the index");
    assert_eq!(journal.devices().expect("devices"), ["D1"]);
}

/// The index is caught up with the log at open: entries sled lost in a crash (here:
/// removed by hand, with the mark moved back) come back from the log, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_behind_the_log_is_caught_up_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = Store::open(dir.path()).expect("store");
        let journal = store.journal().expect("journal");
        for i in 0..5 {
            journal.append("D1", vec![punch("1", 100 + i), punch("2", 100 + i)], 1).await.expect("append");
            journal.append("D2", vec![punch("1", 100 + i)], 1).await.expect("append");
        }
        // sled lost everything written after the first appends.
        let tree = journal.tree().clone();
        for key in tree.iter().keys() {
            let key = key.expect("key");
            if key.starts_with(b"b\0") || key.starts_with(b"p\0") || key.starts_with(b"s\0") {
                let keep = key.as_ref() == batch_key("D1", 1).as_slice();
                if !keep {
                    tree.remove(key).expect("remove");
                }
            }
        }
        tree.insert(INDEXED_KEY, &0u64.to_be_bytes()).expect("mark");
        tree.flush().expect("flush");
    }
    let store = Store::open(dir.path()).expect("store");
    let journal = store.journal().expect("journal");
    assert_eq!(journal.last_seq("D1").expect("last"), 10);
    assert_eq!(journal.last_seq("D2").expect("last"), 5);
    let d1: Vec<u64> = journal.read("D1", 0, u64::MAX, 100).expect("read").iter().map(|e| e.sequence).collect();
    assert_eq!(d1, (1..=10).collect::<Vec<_>>());
    assert_eq!(journal.count_punches("D2", 0, 10_000).expect("count"), 5);
    assert_eq!(journal.devices().expect("devices"), ["D1", "D2"]);
    let again = journal.append("D2", vec![punch("1", 104), punch("1", 105)], 2).await.expect("append");
    assert_eq!(again.duplicates(), 1, "the recovered punches are recognised when sent again");
    assert_eq!(again.events[1].1, 6, "sequences go on after the recovered ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_removes_whole_appends_keeps_the_sequence_and_frees_segments() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let journal = store.journal().expect("journal");
    journal.append("D1", vec![punch("1", 100), punch("2", 100)], 10).await.expect("append");
    journal.append("D1", vec![punch("3", 100)], 20).await.expect("append");
    let removed = tokio::task::block_in_place(|| journal.prune("D1", 15, u64::MAX)).expect("prune");
    assert_eq!(removed, 2, "only the append received before the cut");
    assert!(!journal.contains("D1", 1).expect("contains") && journal.contains("D1", 3).expect("contains"));
    assert_eq!(journal.count_punches("D1", 0, 1000).expect("count"), 1);
    let resent = journal.append("D1", vec![punch("1", 100)], 30).await.expect("append");
    assert_eq!(resent.events[0].1, 4, "a pruned punch sent again is new, with a new sequence");
    let purged = tokio::task::block_in_place(|| journal.purge("D1")).expect("purge");
    assert_eq!(purged, 2);
    assert_eq!(journal.last_seq("D1").expect("last"), 4, "the sequence outlives the events");
    assert!(journal.read("D1", 0, u64::MAX, 10).expect("read").is_empty());
    let released = tokio::task::block_in_place(|| journal.release_space()).expect("release");
    assert_eq!(released.segments, 0, "the segment being written is kept");
}

/// A journal of an earlier version (events in sled under `e` keys, as JSON or compact,
/// with `t`, `k` and `h` indexes) is moved into the log at open, and reads as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_of_an_earlier_version_is_moved_into_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        // No background flusher: dropping the database releases its lock at once (with
        // one, the reopen below could find the lock still held).
        let db = sled::Config::new().path(dir.path()).flush_every_ms(None).open().expect("sled");
        let tree = db.open_tree("journal").expect("tree");
        for seq in 1..=2500u64 {
            let event = Event {
                id: format!("id-{seq}"),
                device_id: "D1".into(),
                sequence: seq,
                received_at_ms: 1,
                body: punch(&format!("{}", seq % 7), 1000 + seq as i64),
            };
            let bytes =
                if seq % 2 == 0 { serde_json::to_vec(&event).expect("json") } else { encode(&event).expect("encode") };
            let mut key = b"e\0D1\0".to_vec();
            key.extend_from_slice(&seq.to_be_bytes());
            tree.insert(key, bytes).expect("insert");
            let mut time = b"t\0D1\0".to_vec();
            time.extend_from_slice(&keys::ordered(1000 + seq as i64));
            time.extend_from_slice(&seq.to_be_bytes());
            tree.insert(time, &[1]).expect("insert");
        }
        tree.insert(b"h\0D1\0xxxxxxxx", &2500u64.to_be_bytes()).expect("insert");
        tree.insert(seq_key("D1"), &1u64.to_be_bytes()).expect("insert");
        db.flush().expect("flush");
    }
    let store = Store::open(dir.path()).expect("store");
    let journal = store.journal().expect("journal");
    let events = journal.read("D1", 0, u64::MAX, 5000).expect("read");
    assert_eq!(events.len(), 2500);
    assert!(events.iter().enumerate().all(|(i, e)| e.sequence == i as u64 + 1 && e.id == format!("id-{}", i + 1)));
    assert_eq!(journal.count_punches("D1", 0, 10_000).expect("count"), 2500);
    let leftovers = journal
        .tree()
        .iter()
        .keys()
        .filter(|k| k.as_ref().is_ok_and(|k| [b'e', b't', b'k', b'h'].contains(&k[0])))
        .count();
    assert_eq!(leftovers, 0, "the earlier layout is gone");
    let again = journal.append("D1", vec![punch("3", 1003)], 2).await.expect("append");
    assert_eq!(again.events[0], ("id-3".to_string(), 3, true), "moved punches are recognised when sent again");
    drop(journal);
    drop(store);
    let store = Store::open(dir.path()).expect("store");
    assert_eq!(
        store.journal().expect("journal").read("D1", 0, u64::MAX, 5000).expect("read").len(),
        2500,
        "moved once"
    );
}

/// A flipped byte in a stored record: the journal opens, the event is reported
/// unreadable (never served as another), the others read as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_is_reported_and_the_rest_is_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let segment = {
        let store = Store::open(dir.path()).expect("store");
        let journal = store.journal().expect("journal");
        for i in 0..3 {
            journal.append("D1", vec![punch(&format!("{i}"), 100 + i)], 1).await.expect("append");
        }
        journal.shared.log.segments()[0].path.clone()
    };
    // A byte in the middle of the second record's payload.
    let mut bytes = std::fs::read(&segment).expect("read");
    let first_len = u32::from_le_bytes(bytes[..4].try_into().expect("a header")) as usize;
    let second = 8 + first_len;
    bytes[second + 8 + 20] ^= 0x40;
    std::fs::write(&segment, &bytes).expect("write");
    let store = Store::open(dir.path()).expect("store");
    let journal = store.journal().expect("journal");
    let seqs: Vec<u64> = journal.read("D1", 0, u64::MAX, 10).expect("read").iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, [1, 3]);
    assert!(journal.get("D1", 2).expect("get").is_none());
    let damage = journal.damage();
    assert!(damage.unreadable_events >= 1 && !damage.damaged.is_empty(), "{damage:?}");
    assert_eq!(journal.append("D1", vec![punch("9", 500)], 2).await.expect("append").events[0].1, 4);
}

/// A terminal's backlog in one append is indexed in chunks: reading a few of its events
/// reads one chunk, and every event is found by sequence and by log time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_append_is_indexed_in_chunks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let journal = store.journal().expect("journal");
    let backlog: Vec<EventBody> = (0..300).map(|i| punch(&format!("{}", i % 7), 1000 + i * 60)).collect();
    assert_eq!(journal.append("D1", backlog, 1).await.expect("append").stored(), 300);
    let entries = journal.tree().scan_prefix(batch_prefix("D1")).count();
    assert_eq!(entries, 300_usize.div_ceil(entries::ENTRY_EVENTS));
    let some: Vec<u64> = journal.read("D1", 150, u64::MAX, 8).expect("read").iter().map(|e| e.sequence).collect();
    assert_eq!(some, (151..=158).collect::<Vec<_>>());
    assert_eq!(journal.get("D1", 300).expect("get").map(|e| e.sequence), Some(300));
    let all = journal.punches("D1", 0, i64::MAX, None, u64::MAX, 1000).expect("punches");
    assert_eq!(all.iter().map(|e| e.sequence).collect::<Vec<_>>(), (1..=300).collect::<Vec<_>>());
    assert_eq!(journal.count_punches("D1", 1000, 1000 + 299 * 60).expect("count"), 300);
}

/// After a restart the de-duplication loads an hour from the fingerprints its index
/// entries hold; entries written by an earlier version (without them) are read from the
/// log instead. Either way a punch sent again is recognised, with its own sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_are_recognised_after_a_restart_from_the_index_or_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 150 punches in one hour: three index entries, offsets up to 63 in each.
    let stored: Vec<EventBody> = (0..150).map(|i| punch(&format!("u{i}"), 7200 + i)).collect();
    {
        let store = Store::open(dir.path()).expect("store");
        let journal = store.journal().expect("journal");
        journal.append("D1", vec![punch("first", 7100)], 1).await.expect("append");
        assert_eq!(journal.append("D1", stored.clone(), 1).await.expect("append").stored(), 150);
    }
    let resend = |store: &Store| {
        let journal = store.journal().expect("journal");
        let bodies = vec![stored[0].clone(), stored[70].clone(), stored[149].clone(), punch("new", 7300)];
        async move {
            let again = journal.append("D1", bodies, 2).await.expect("append");
            let seqs: Vec<(u64, bool)> = again.events.iter().map(|(_, seq, dup)| (*seq, *dup)).collect();
            (seqs, journal)
        }
    };
    let store = Store::open(dir.path()).expect("store");
    let (seqs, journal) = resend(&store).await;
    assert_eq!(seqs, [(2, true), (72, true), (151, true), (152, false)], "from the index's fingerprints");
    let tree = journal.tree().clone();
    for found in tree.scan_prefix(b"p\0D1\0") {
        let (key, value) = found.expect("entry");
        let first = keys::trailing_u64(&key).expect("first");
        assert!(HourEntry::prints(&value, first).is_some(), "every hour entry holds its fingerprints");
    }
    // Entries as an earlier version wrote them: the 16-byte head only.
    for found in tree.scan_prefix(b"p\0D1\0") {
        let (key, value) = found.expect("entry");
        tree.insert(key, &value[..16]).expect("rewrite");
    }
    tree.flush().expect("flush");
    drop((tree, journal, store));
    let store = Store::open(dir.path()).expect("store");
    let (seqs, _) = resend(&store).await;
    assert_eq!(seqs, [(2, true), (72, true), (151, true), (152, true)], "from the log");
}
