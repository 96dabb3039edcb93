//! A snapshot whose writing never finished (`store/snap.<lsn>.generating`, left at 0 bytes
//! by a start that failed on a full disk) no longer keeps the store from opening: the
//! vendored sled ignores and removes it and reads the newest finished snapshot
//! (docs/storage.md, vendor/README.md). Before the patch every later start failed with
//! "empty/corrupt snapshot file found".
use std::path::Path;

use biogate::plugin::bindings::types::{DeviceTime, EventBody, InputType, Punch, PunchType};
use biogate::store::Store;

fn punch(user: &str, t: i64) -> EventBody {
    EventBody::Punch(Punch {
        user_id: user.into(),
        log_time: DeviceTime { unix_seconds: t, utc_offset_minutes: 330 },
        punch_type: PunchType::CheckIn,
        input_type: InputType::Fingerprint,
        temperature: None,
        face_mask: None,
        work_code: None,
        photo: None,
    })
}

/// The snapshot files of the store in `dir`, by name.
fn snapshots(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snap."))
        .collect();
    names.sort();
    names
}

/// The users of every stored punch of `D1`, in order.
async fn stored_users(dir: &Path) -> Vec<String> {
    let store = Store::open(dir).expect("the store opens");
    let journal = store.journal().unwrap();
    journal
        .read("D1", 0, u64::MAX, 10_000)
        .unwrap()
        .into_iter()
        .map(|e| match e.body {
            EventBody::Punch(p) => p.user_id,
            other => panic!("not a punch: {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_generating_snapshot_does_not_keep_the_store_from_opening() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let expected: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    {
        let store = Store::open(&store_dir).unwrap();
        let journal = store.journal().unwrap();
        for (i, user) in expected.iter().enumerate().take(200) {
            journal.append("D1", vec![punch(user, 1_750_000_000 + i as i64)], 1).await.unwrap();
        }
    }
    // A second start writes a finished snapshot (recovery replays the log after it).
    {
        let store = Store::open(&store_dir).unwrap();
        let journal = store.journal().unwrap();
        for (i, user) in expected.iter().enumerate().skip(200) {
            journal.append("D1", vec![punch(user, 1_750_000_000 + i as i64)], 1).await.unwrap();
        }
    }
    let finished: Vec<String> = snapshots(&store_dir).into_iter().filter(|n| !n.ends_with(".generating")).collect();
    let last = finished.last().expect("sled wrote a finished snapshot").clone();

    // What a start that failed on a full disk leaves: 0-byte unfinished snapshots, one of
    // the finished one's LSN (it sorts right after it) and one of a later LSN.
    std::fs::write(store_dir.join(format!("{last}.generating")), b"").unwrap();
    std::fs::write(store_dir.join("snap.7FFFFFFFFFFFFFFF.generating"), b"").unwrap();

    assert_eq!(stored_users(&store_dir).await, expected, "every punch is there");
    assert!(
        snapshots(&store_dir).iter().all(|n| !n.ends_with(".generating")),
        "the unfinished snapshots are gone: {:?}",
        snapshots(&store_dir)
    );
    // And it keeps opening.
    assert_eq!(stored_users(&store_dir).await, expected);
}
