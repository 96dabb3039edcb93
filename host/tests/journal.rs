//! The journal on a real sled store: order, durability across reopen, de-duplication,
//! sequences that never restart, and pruning that keeps what is not yet settled.
mod common;

use biogate::plugin::bindings::types::{DeviceTime, EventBody, InputType, Punch, PunchType};
use biogate::store::Store;

fn punch(user: &str, t: i64) -> EventBody {
    EventBody::Punch(Punch {
        user_id: user.into(),
        log_time: DeviceTime { unix_seconds: t, utc_offset_minutes: 0 },
        punch_type: PunchType::CheckIn,
        input_type: InputType::Card,
        temperature: None,
        face_mask: None,
        work_code: None,
        photo: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_in_order_dedupes_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let store = Store::open(&dir.path().join("s")).unwrap();
        let journal = store.journal().unwrap();
        let first = journal.append("D1", vec![punch("1", 100), punch("2", 100), punch("1", 100)], 1).await.unwrap();
        assert_eq!(first.stored(), 2, "the repeat inside the batch is stored once");
        assert_eq!(first.events[2].0, first.events[0].0, "it reports the stored event's id");
        let second = journal.append("D1", vec![punch("2", 100), punch("3", 101)], 2).await.unwrap();
        assert_eq!((second.stored(), second.duplicates()), (1, 1));
        let events = journal.read("D1", 0, u64::MAX, 10).unwrap();
        assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![1, 2, 3]);
        events.into_iter().map(|e| e.id).collect::<Vec<_>>()
    };
    // Acknowledged means on disk: reopen without any explicit flush.
    let store = Store::open(&dir.path().join("s")).unwrap();
    let journal = store.journal().unwrap();
    let events = journal.read("D1", 0, u64::MAX, 10).unwrap();
    assert_eq!(events.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(journal.devices().unwrap(), vec!["D1".to_string()]);
    // After the reopen a punch sent again is still found (by user, log time and type among
    // the punches of that second); another punch type at the same second is a new punch.
    let again = journal.append("D1", vec![punch("3", 101), punch("1", 100)], 3).await.unwrap();
    assert_eq!(again.duplicates(), 2);
    assert_eq!((again.events[0].0.as_str(), again.events[0].1), (ids[2].as_str(), 3));
    let mut check_out = punch("3", 101);
    if let EventBody::Punch(p) = &mut check_out {
        p.punch_type = PunchType::CheckOut;
    }
    let other_type = journal.append("D1", vec![check_out], 4).await.unwrap();
    assert_eq!((other_type.stored(), other_type.events[0].1), (1, 4));
}

/// Pruning blocks on the device's writer lock, so it runs off the async workers.
fn prune(
    journal: &biogate::store::Journal,
    device: &str,
    before_ms: u64,
    upto: u64,
) -> Result<usize, biogate::store::StoreError> {
    tokio::task::block_in_place(|| journal.prune(device, before_ms, upto))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_keeps_unsettled_and_recent_events_and_sequences_never_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s")).unwrap();
    let journal = store.journal().unwrap();
    journal.append("D1", vec![punch("1", 1), punch("2", 2)], 1_000).await.unwrap();
    journal.append("D1", vec![punch("3", 3)], 1_000).await.unwrap();
    journal.append("D1", vec![punch("4", 4)], 9_000).await.unwrap();
    // Old enough: events received before 5_000; settled by every route: up to seq 2.
    assert_eq!(prune(&journal, "D1", 5_000, 2).unwrap(), 2);
    let left: Vec<u64> = journal.read("D1", 0, u64::MAX, 10).unwrap().iter().map(|e| e.sequence).collect();
    assert_eq!(left, vec![3, 4], "seq 3 is unsettled, seq 4 is recent");
    // Events go with their whole append (docs/storage.md): one unsettled event keeps it.
    journal.append("D1", vec![punch("5", 5), punch("6", 6)], 1_000).await.unwrap();
    assert_eq!(prune(&journal, "D1", 5_000, 2).unwrap(), 0, "seq 3 is unsettled");
    assert_eq!(prune(&journal, "D1", 5_000, 3).unwrap(), 1);
    let left: Vec<u64> = journal.read("D1", 0, u64::MAX, 10).unwrap().iter().map(|e| e.sequence).collect();
    assert_eq!(left, vec![4, 5, 6]);
    assert_eq!(prune(&journal, "D1", 10_000, 5).unwrap(), 1, "seq 4; seq 5 and 6 share an append, 6 is unsettled");
    assert_eq!(prune(&journal, "D1", 10_000, u64::MAX).unwrap(), 2);
    let next = journal.append("D1", vec![punch("7", 7)], 9_000).await.unwrap();
    assert_eq!(next.events[0].1, 7);
    assert_eq!(prune(&journal, "D1", 10_000, u64::MAX).unwrap(), 1);
    // Reopened with no event left, the store still knows the last sequence.
    drop((journal, store, next));
    let store = Store::open(&dir.path().join("s")).unwrap();
    let journal = store.journal().unwrap();
    assert_eq!(journal.devices().unwrap(), vec!["D1".to_string()]);
    let next = journal.append("D1", vec![punch("8", 8)], 11_000).await.unwrap();
    assert_eq!(next.events[0].1, 8, "sequences continue after everything was pruned");
    journal.append("D1", vec![punch("9", 9)], 12_000).await.unwrap();
    drop((journal, store));
    let store = Store::open(&dir.path().join("s")).unwrap();
    let journal = store.journal().unwrap();
    assert_eq!(journal.last_seq("D1").unwrap(), 9, "appends after the prune are counted from the events");
    assert_eq!(journal.append("D1", vec![punch("10", 10)], 13_000).await.unwrap().events[0].1, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn punches_by_log_time_count_and_page_like_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s")).unwrap();
    let journal = store.journal().unwrap();
    // Out-of-order log times over ~10 hours, including negative (pre-1970) ones.
    let times: Vec<i64> = (0..600).map(|i: i64| ((i * 7919) % 36_000) - 1_800).collect();
    for chunk in times.chunks(100) {
        let bodies = chunk.iter().enumerate().map(|(j, t)| punch(&format!("u{j}"), *t)).collect();
        journal.append("D1", bodies, 1).await.unwrap();
    }
    let brute = |from: i64, to: i64| times.iter().filter(|t| (from..=to).contains(*t)).count() as u64;
    for (from, to) in
        [(-1_800, 34_199), (0, 3_599), (1, 3_600), (100, 20_000), (3_599, 3_600), (5_000, 4_000), (-7_200, -1)]
    {
        assert_eq!(journal.count_punches("D1", from, to).unwrap(), brute(from, to), "count of {from}..={to}");
    }
    // Paging in (log time, sequence) order reads every punch of the range once.
    let snapshot = journal.snapshot("D1").await.unwrap();
    let (mut after, mut seen) = (None, Vec::new());
    loop {
        let page = journal.punches("D1", 100, 20_000, after, snapshot, 37).unwrap();
        let Some(last) = page.last() else { break };
        after = biogate::operations::load_log::cursor_of(last);
        seen.extend(page.iter().map(|e| match &e.body {
            EventBody::Punch(p) => p.log_time.unix_seconds,
            _ => unreachable!(),
        }));
    }
    let mut expected: Vec<i64> = times.iter().copied().filter(|t| (100..=20_000).contains(t)).collect();
    expected.sort();
    assert_eq!(seen, expected);
    // Punches stored after the snapshot are not part of it; pruning updates the counts.
    journal.append("D1", vec![punch("late", 150)], 2).await.unwrap();
    assert!(journal.punches("D1", 150, 150, None, snapshot, 10).unwrap().iter().all(|e| e.sequence <= snapshot));
    assert_eq!(journal.count_punches("D1", -1_800, 34_199).unwrap(), brute(-1_800, 34_199) + 1);
    assert_eq!(prune(&journal, "D1", 2, u64::MAX).unwrap(), 600, "received at 1 < 2: all but the late one");
    assert_eq!(journal.count_punches("D1", -1_800, 34_199).unwrap(), 1);
}

fn punches(range: std::ops::Range<i64>) -> Vec<EventBody> {
    range.map(|i| punch(&format!("user-{i}"), 1_750_000_000 + i)).collect()
}

/// Writes until the filesystem of `path` takes no more bytes (the filler's 256 KiB
/// chunks leave up to a chunk free).
fn fill_to_the_last_byte(path: &std::path::Path) -> std::fs::File {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("the last filler");
    for size in [65_536, 4096, 512, 1] {
        let chunk = vec![0x5Au8; size];
        while file.write_all(&chunk).is_ok() {}
    }
    file
}

/// The event log on a filesystem filled to the last byte by another program: an append
/// is refused as a full disk (503 and code 44 for the device, which keeps its punches),
/// uses no sequence, and once space is back appends go on, and everything acknowledged
/// is there after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_filesystem_refuses_appends_as_disk_full_until_space_is_back() {
    use biogate_e2e::small_fs::{Filler, SmallFs};
    let fs = match SmallFs::mount(16) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIP a_full_filesystem_refuses_appends_as_disk_full_until_space_is_back: {why}");
            return;
        }
    };
    let dir = fs.path().join("s");
    {
        let store = Store::open(&dir).unwrap();
        let journal = store.journal().unwrap();
        journal.append("D1", punches(0..100), 1).await.unwrap();
        let mut filler = Filler::create(&fs.path().join("filler"));
        filler.grow(u64::MAX, 0);
        let last = fill_to_the_last_byte(&fs.path().join("filler-last"));
        let refused = journal.append("D1", punches(100..200), 2).await.expect_err("the filesystem is full");
        assert!(refused.is_disk_full(), "refused as a full disk, not an internal error: {refused}");
        drop(last);
        std::fs::remove_file(fs.path().join("filler-last")).unwrap();
        filler.remove();
        let stored = journal.append("D1", punches(100..200), 3).await.expect("space is back");
        assert_eq!((stored.stored(), stored.events[0].1), (100, 101), "the refused append used no sequence");
    }
    let store = Store::open(&dir).unwrap();
    let journal = store.journal().unwrap();
    let seqs: Vec<u64> = journal.read("D1", 0, u64::MAX, 1000).unwrap().iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
}
