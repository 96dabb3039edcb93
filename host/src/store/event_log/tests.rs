//! Tests of the event log on real files in temporary folders: round trips, group commit
//! under concurrency, rolls, retention, reopening, and what recovery does with a torn
//! tail, a flipped byte, a missing segment.
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::*;

/// The event bytes of `device`'s event `seq`: `len` bytes that differ per event.
fn body(device: &str, seq: u64, len: usize) -> Vec<u8> {
    let seed = device.bytes().fold(seq.wrapping_mul(2_654_435_761), |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    (0..len).map(|i| (seed.wrapping_add(i as u64 * 7) % 251) as u8).collect()
}

fn batch(device: &str, seqs: std::ops::Range<u64>, len: usize) -> LogBatch {
    let mut batch = LogBatch::new();
    for seq in seqs {
        batch.push(device, seq, &body(device, seq, len)).expect("push");
    }
    batch
}

fn assert_record(log: &EventLog, pos: Position, device: &str, seq: u64, len: usize) {
    let record = log.read(pos).unwrap_or_else(|e| panic!("reading {device}/{seq} at {pos}: {e}"));
    assert_eq!((record.device(), record.seq()), (device, seq), "record at {pos}");
    assert_eq!(record.body(), body(device, seq, len), "body of {device}/{seq}");
}

fn options(segment_bytes: u64) -> LogOptions {
    LogOptions { segment_bytes, ..LogOptions::default() }
}

fn open(dir: &Path) -> (EventLog, RecoveryReport) {
    EventLog::open(dir).expect("open")
}

/// (segment file, offset in it) of a position.
fn locate(log: &EventLog, pos: Position) -> (PathBuf, u64) {
    let segment = log.segments().into_iter().rev().find(|s| s.start <= pos).expect("a segment");
    (segment.path, pos.0 - segment.start.0)
}

fn flip(path: &Path, offset: u64) {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).expect("open segment");
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).expect("read byte");
    byte[0] ^= 0x10;
    file.write_all_at(&byte, offset).expect("write byte");
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("metadata").len()
}

/// Ten records, one append each, in one segment; their positions.
fn ten_records(dir: &Path) -> Vec<Position> {
    let (log, report) = open(dir);
    assert!(report.is_clean());
    (0..10).map(|seq| log.append_blocking(batch("D1", seq..seq + 1, 40)).expect("append")[0]).collect()
}

#[test]
fn records_read_back_by_position_and_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, report) = open(dir.path());
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((log.start(), log.end()), (Position(0), Position(0)));
    let first = log.append_blocking(batch("SN7A2300583", 1..101, 55)).expect("append");
    // A photo-sized record: read with one pread of its own, not through the segment.
    let mut photo = LogBatch::new();
    photo.push("SN7A2300583", 101, &body("SN7A2300583", 101, 300_000)).expect("push");
    let second = log.append_blocking(photo).expect("append");
    let third = log.append_blocking(batch("B2", 1..3, 0)).expect("append");
    assert_eq!(first.len(), 100);
    assert_eq!(first[0], Position(0));
    let all: Vec<Position> = first.iter().chain(&second).chain(&third).copied().collect();
    assert!(all.windows(2).all(|w| w[0] < w[1]), "positions grow");
    for (i, pos) in first.iter().enumerate() {
        assert_record(&log, *pos, "SN7A2300583", i as u64 + 1, 55);
    }
    assert_record(&log, second[0], "SN7A2300583", 101, 300_000);
    assert_record(&log, third[1], "B2", 2, 0);
    assert_eq!(log.end().0, file_len(&log.segments()[0].path));

    let iterated: Vec<(Position, u64)> =
        log.iter_from(log.start()).map(|r| r.map(|(p, rec)| (p, rec.seq())).expect("intact")).collect();
    assert_eq!(iterated.len(), 103);
    assert_eq!(iterated.iter().map(|(p, _)| *p).collect::<Vec<_>>(), all);
    // From a record's position, and nothing from the end.
    assert_eq!(log.iter_from(second[0]).count(), 3);
    // The records of one append, by its first position and its size.
    let span: Vec<u64> =
        log.iter_span(first[0], second[0].0 - first[0].0).map(|r| r.expect("intact").1.seq()).collect();
    assert_eq!(span, (1..101).collect::<Vec<_>>());
    assert_eq!(log.iter_span(first[10], first[12].0 - first[10].0).count(), 2);
    assert_eq!(log.iter_from(log.end()).count(), 0);

    assert!(matches!(log.read(log.end()), Err(LogError::PastEnd { .. })));
    // A position inside a record is no record.
    assert!(matches!(log.read(Position(first[0].0 + 3)), Err(LogError::Corrupt(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_share_group_commits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(dir.path());
    let appenders = 32u64;
    let appends = 20u64;
    let mut tasks = Vec::new();
    for a in 0..appenders {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let device = format!("D{a}");
            let mut positions = Vec::new();
            let mut seq = 0;
            for i in 0..appends {
                let n = 1 + (a + i) % 5;
                let got = log.append(batch(&device, seq..seq + n, 30)).await.expect("append");
                assert_eq!(got.len() as u64, n);
                positions.extend(got.into_iter().zip(seq..));
                seq += n;
            }
            (device, positions)
        }));
    }
    let mut every = Vec::new();
    for task in tasks {
        let (device, positions) = task.await.expect("task");
        assert!(positions.windows(2).all(|w| w[0].0 < w[1].0), "{device}: positions in append order");
        for (pos, seq) in &positions {
            assert_record(&log, *pos, &device, *seq, 30);
        }
        every.extend(positions.into_iter().map(|(p, _)| p));
    }
    let total = every.len();
    every.sort();
    every.dedup();
    assert_eq!(every.len(), total, "every record has its own position");
    let groups = log.groups_written();
    assert!(groups < appenders * appends, "{groups} group commits for {} appends", appenders * appends);
    // Everything is in the file, nothing else.
    assert_eq!(log.iter_from(log.start()).filter(|r| r.is_ok()).count(), total);
}

#[test]
fn segments_roll_and_positions_run_across_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = EventLog::open_with(dir.path(), options(1000)).expect("open");
    let mut positions = Vec::new();
    for seq in 0..60 {
        // Two records per append, 2 * (8 + 2 + 2 + 8 + 40) = 120 bytes.
        positions.extend(log.append_blocking(batch("D1", seq * 2..seq * 2 + 2, 40)).expect("append"));
    }
    let segments = log.segments();
    assert!(segments.len() >= 7, "{} segments", segments.len());
    for pair in segments.windows(2) {
        assert_eq!(pair[0].end, pair[1].start, "each segment starts where the one before ends");
        assert!(pair[0].end.0 - pair[0].start.0 <= 1000);
        assert_eq!(file_len(&pair[0].path), pair[0].end.0 - pair[0].start.0);
    }
    for segment in &segments {
        let name = segment.path.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(name, format!("{:020}.seg", segment.start.0));
    }
    // An append's two records never straddle segments.
    for pair in positions.chunks(2) {
        assert_eq!(locate(&log, pair[0]).0, locate(&log, pair[1]).0);
    }
    for (seq, pos) in positions.iter().enumerate() {
        assert_record(&log, *pos, "D1", seq as u64, 40);
    }
    let seqs: Vec<u64> = log.iter_from(Position(0)).map(|r| r.expect("intact").1.seq()).collect();
    assert_eq!(seqs, (0..120).collect::<Vec<_>>());
    // A span inside a sealed segment ends there: the positions up to the next segment are
    // not asked for, so not reported missing.
    let span: Vec<_> = log.iter_span(positions[0], positions[2].0 - positions[0].0).collect();
    assert!(span.iter().all(Result::is_ok), "{span:?}");
    assert_eq!(span.len(), 2);
    drop(log);

    let (log, report) = EventLog::open_with(dir.path(), options(1000)).expect("reopen");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.segments, segments.len());
    assert_eq!(log.segments(), segments);
}

#[test]
fn retention_removes_whole_old_segments_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = EventLog::open_with(dir.path(), options(1000)).expect("open");
    let positions: Vec<Position> =
        (0..60).flat_map(|s| log.append_blocking(batch("D1", s * 2..s * 2 + 2, 40)).expect("append")).collect();
    let segments = log.segments();
    let cut = positions[50];
    let holding = segments.iter().position(|s| s.start <= cut && cut < s.end).expect("segment of the cut");
    assert!(holding >= 2);

    let removed = log.retain_from(cut).expect("retain");
    assert_eq!(removed.segments, holding);
    assert_eq!(removed.bytes, segments[holding].start.0);
    assert_eq!(removed.start, segments[holding].start);
    assert_eq!(log.start(), segments[holding].start);
    for (i, segment) in segments.iter().enumerate() {
        assert_eq!(segment.path.exists(), i >= holding, "{}", segment.path.display());
    }
    assert!(matches!(log.read(positions[0]), Err(LogError::Retained { .. })));
    assert_record(&log, cut, "D1", 50, 40);
    let first_kept = positions.iter().position(|p| *p >= segments[holding].start).expect("kept");
    assert_record(&log, positions[first_kept], "D1", first_kept as u64, 40);
    // Iterating from a removed position says so, then goes on from the start.
    let mut iter = log.iter_from(positions[0]);
    assert!(matches!(iter.next(), Some(Err(LogError::Retained { .. }))));
    assert_eq!(iter.next().expect("a record").expect("intact").1.seq(), first_kept as u64);

    // The segment being written is never removed.
    let removed = log.retain_from(Position(u64::MAX)).expect("retain all");
    assert_eq!(log.segments().len(), 1);
    assert_eq!(removed.start, log.segments()[0].start);
    assert_record(&log, *positions.last().expect("last"), "D1", 119, 40);
    let next = log.append_blocking(batch("D1", 120..121, 40)).expect("append");
    drop(log);

    let (log, report) = EventLog::open_with(dir.path(), options(1000)).expect("reopen");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(log.start(), removed.start);
    assert_record(&log, next[0], "D1", 120, 40);
}

#[test]
fn a_reopened_log_carries_on_where_it_ended() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(dir.path());
    let before = log.append_blocking(batch("D1", 0..50, 60)).expect("append");
    let end = log.end();
    drop(log);
    let (log, report) = open(dir.path());
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.records_scanned, report.end, log.end()), (50, end, end));
    let after = log.append_blocking(batch("D1", 50..51, 60)).expect("append");
    assert_eq!(after[0], end);
    for (seq, pos) in before.iter().chain(&after).enumerate() {
        assert_record(&log, *pos, "D1", seq as u64, 60);
    }
}

/// A crash while the last record was being written leaves any prefix of it. Cut at each
/// byte of the last record, the log opens with the earlier records intact, the partial
/// one cut off and reported, and the next record goes where it began.
#[test]
fn a_torn_last_record_is_cut_off_and_reported_at_every_byte() {
    let original = tempfile::tempdir().expect("temp dir");
    let positions = ten_records(original.path());
    let segment_name = PathBuf::from(super::segment::file_name(0));
    let bytes = std::fs::read(original.path().join(&segment_name)).expect("segment");
    let last = positions[9].0 as usize;
    for cut in last..bytes.len() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(&segment_name);
        std::fs::write(&path, &bytes[..cut]).expect("write");
        let (log, report) = open(dir.path());
        if cut == last {
            assert!(report.is_clean(), "cut at a record boundary: {report:?}");
        } else {
            let torn = report.torn_tail.clone().unwrap_or_else(|| panic!("cut at {cut}: no torn tail: {report:?}"));
            assert_eq!((torn.offset, torn.position, torn.len), (last as u64, positions[9], (cut - last) as u64));
            assert_eq!(torn.segment, path);
            assert!(report.damaged.is_empty() && report.missing.is_empty(), "cut at {cut}: {report:?}");
        }
        assert_eq!(report.records_scanned, 9, "cut at {cut}");
        assert_eq!(file_len(&path), last as u64, "cut at {cut}: the torn bytes are gone");
        assert_eq!(log.end(), positions[9]);
        for (seq, pos) in positions[..9].iter().enumerate() {
            assert_record(&log, *pos, "D1", seq as u64, 40);
        }
        assert!(matches!(log.read(positions[9]), Err(LogError::PastEnd { .. })));
        let again = log.append_blocking(batch("D1", 9..10, 40)).expect("append");
        assert_eq!(again[0], positions[9]);
        assert_record(&log, again[0], "D1", 9, 40);
    }
}

/// A flipped byte in the last record, or zeros after it (a size grown before the data
/// reached the disk): the same torn tail.
#[test]
fn a_checksum_mismatch_in_the_last_record_or_zeros_after_it_is_a_torn_tail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let positions = ten_records(dir.path());
    let path = dir.path().join(super::segment::file_name(0));
    let len = file_len(&path);
    flip(&path, len - 3);
    let (log, report) = open(dir.path());
    let torn = report.torn_tail.clone().expect("torn tail");
    assert!(matches!(torn.reason, CorruptReason::Checksum { .. }), "{torn:?}");
    assert_eq!((torn.position, torn.len), (positions[9], len - positions[9].0));
    assert_eq!(log.end(), positions[9]);
    log.append_blocking(batch("D1", 9..10, 40)).expect("append");
    drop(log);

    let file = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
    file.set_len(len + 4096).expect("grow");
    let (log, report) = open(dir.path());
    let torn = report.torn_tail.clone().expect("torn tail");
    assert_eq!((torn.offset, torn.len), (len, 4096));
    assert!(matches!(torn.reason, CorruptReason::LengthOutOfRange { len: 0 }), "{torn:?}");
    assert_eq!(file_len(&path), len);
    assert_record(&log, positions[9], "D1", 9, 40);
}

/// A flipped byte in a record with intact records after it is damage, not a torn
/// write: whatever byte of the record it is (header or payload), the log opens, reports
/// exactly that record's bytes, keeps them on disk, and every other record reads back.
#[test]
fn a_flipped_byte_mid_segment_is_reported_and_nothing_else_is_lost() {
    let original = tempfile::tempdir().expect("temp dir");
    let positions = ten_records(original.path());
    let segment_name = PathBuf::from(super::segment::file_name(0));
    let bytes = std::fs::read(original.path().join(&segment_name)).expect("segment");
    let (bad, next) = (positions[4].0, positions[5].0);
    for at in bad..next {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(&segment_name);
        std::fs::write(&path, &bytes).expect("write");
        flip(&path, at);
        let (log, report) = open(dir.path());
        assert!(report.torn_tail.is_none(), "flip at {at}: {report:?}");
        assert_eq!(report.damaged.len(), 1, "flip at {at}: {report:?}");
        let damage = &report.damaged[0];
        assert_eq!(
            (&damage.segment, damage.offset, damage.position, damage.len),
            (&path, bad, positions[4], next - bad),
            "flip at {at}"
        );
        assert_eq!(report.records_scanned, 9);
        assert_eq!(file_len(&path), bytes.len() as u64, "nothing cut");
        for (seq, pos) in positions.iter().enumerate().filter(|(s, _)| *s != 4) {
            assert_record(&log, *pos, "D1", seq as u64, 40);
        }
        match log.read(positions[4]) {
            Err(LogError::Corrupt(d)) => assert_eq!(&d, damage),
            other => panic!("flip at {at}: read the damaged record: {other:?}"),
        }
        // In order, the damage where the record was: nothing skipped without a word.
        let items: Vec<Result<u64, Position>> = log
            .iter_from(log.start())
            .map(|r| match r {
                Ok((_, rec)) => Ok(rec.seq()),
                Err(LogError::Corrupt(d)) => Err(d.position),
                Err(e) => panic!("{e}"),
            })
            .collect();
        let expected: Vec<Result<u64, Position>> =
            (0..10).map(|s| if s == 4 { Err(positions[4]) } else { Ok(s) }).collect();
        assert_eq!(items, expected, "flip at {at}");
        assert_eq!(log.damage(), vec![damage.clone()]);
        // Writing goes on after the last record; a reopen reports the same damage.
        let more = log.append_blocking(batch("D1", 10..11, 40)).expect("append");
        assert_eq!(more[0].0, bytes.len() as u64);
        drop(log);
        let (log, again) = open(dir.path());
        let region = |d: &Damage| (d.segment.clone(), d.position, d.len);
        assert_eq!(again.damaged.iter().map(region).collect::<Vec<_>>(), vec![region(damage)], "flip at {at}");
        assert!(again.torn_tail.is_none());
        assert_record(&log, more[0], "D1", 10, 40);
    }
}

/// Bytes inside a payload shaped like a frame (a device can send any photo) are not taken
/// for a record when recovery searches past damage: a frame's checksum holds only at the
/// position it was written at.
#[test]
fn a_frame_hidden_in_a_payload_is_not_taken_for_a_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(dir.path());
    let first = log.append_blocking(batch("D1", 0..1, 40)).expect("append");
    // A body holding a well-formed frame of "D2", checksummed for some position.
    let mut hidden = LogBatch::new();
    hidden.push("D2", 666, b"forged punch").expect("push");
    let (mut frame, starts) = hidden.into_parts();
    super::record::stamp(&mut frame, &starts, 0);
    let mut carrier = LogBatch::new();
    carrier.push("D1", 1, &[&b"photo"[..], &frame, b"more photo"].concat()).expect("push");
    let carried = log.append_blocking(carrier).expect("append");
    let after = log.append_blocking(batch("D1", 2..3, 40)).expect("append");
    let path = log.segments()[0].path.clone();
    drop(log);
    // Break the carrier's length field.
    flip(&path, carried[0].0 + 2);
    let (log, report) = open(dir.path());
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert_eq!((report.damaged[0].position, report.damaged[0].len), (carried[0], after[0].0 - carried[0].0));
    let seqs: Vec<String> = log
        .iter_from(first[0])
        .map(|r| r.map(|(_, rec)| format!("{}/{}", rec.device(), rec.seq())).unwrap_or_else(|_| "damaged".into()))
        .collect();
    assert_eq!(seqs, ["D1/0", "damaged", "D1/2"]);
}

/// Older segments are not scanned when the log opens: their damage is found by reading
/// (every read checks the checksum), iterating or verifying.
#[test]
fn damage_in_an_older_segment_is_found_when_it_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = EventLog::open_with(dir.path(), options(1000)).expect("open");
    let positions: Vec<Position> =
        (0..30).flat_map(|s| log.append_blocking(batch("D1", s..s + 1, 40)).expect("append")).collect();
    let (path, offset) = locate(&log, positions[3]);
    assert_eq!(path, log.segments()[0].path);
    drop(log);
    flip(&path, offset + 20);
    let (log, report) = EventLog::open_with(dir.path(), options(1000)).expect("open");
    assert!(report.is_clean(), "{report:?}");
    assert!(matches!(log.read(positions[3]), Err(LogError::Corrupt(d)) if d.position == positions[3]));
    assert_record(&log, positions[4], "D1", 4, 40);
    let errors: Vec<LogError> = log.iter_from(log.start()).filter_map(|r| r.err()).collect();
    assert!(matches!(&errors[..], [LogError::Corrupt(d)] if d.position == positions[3]), "{errors:?}");
    let found = log.verify().expect("verify");
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].position, found[0].len), (positions[3], positions[4].0 - positions[3].0));
    assert_eq!(log.damage(), found);
}

#[test]
fn a_missing_segment_in_the_middle_is_reported_and_the_rest_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = EventLog::open_with(dir.path(), options(1000)).expect("open");
    let positions: Vec<Position> =
        (0..60).flat_map(|s| log.append_blocking(batch("D1", s..s + 1, 40)).expect("append")).collect();
    let segments = log.segments();
    assert!(segments.len() >= 4);
    drop(log);
    std::fs::remove_file(&segments[1].path).expect("remove");

    let (log, report) = EventLog::open_with(dir.path(), options(1000)).expect("open");
    assert_eq!(
        report.missing,
        vec![Missing { from: segments[1].start, to: segments[2].start, expected_file: segments[1].path.clone() }]
    );
    assert!(report.torn_tail.is_none() && report.damaged.is_empty());
    let seg_of = |pos: Position| segments.iter().position(|s| s.start <= pos && pos < s.end).expect("segment");
    let mut expected = Vec::new();
    for (seq, pos) in positions.iter().enumerate() {
        if seg_of(*pos) == 1 {
            assert!(matches!(log.read(*pos), Err(LogError::Missing(m)) if m == report.missing[0]));
            if expected.last() != Some(&Err(())) {
                expected.push(Err(()));
            }
        } else {
            assert_record(&log, *pos, "D1", seq as u64, 40);
            expected.push(Ok(seq as u64));
        }
    }
    let items: Vec<Result<u64, ()>> = log
        .iter_from(log.start())
        .map(|r| match r {
            Ok((_, rec)) => Ok(rec.seq()),
            Err(LogError::Missing(m)) => {
                assert_eq!(m, report.missing[0]);
                Err(())
            }
            Err(e) => panic!("{e}"),
        })
        .collect();
    assert_eq!(items, expected);
    assert_eq!(log.missing(), report.missing);
}

/// When the files end before where the caller knows the log reached (the last segment
/// was lost), the range is reported and no position is handed out twice.
#[test]
fn positions_are_not_reused_when_the_log_ends_before_what_is_known() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = EventLog::open_with(dir.path(), options(1000)).expect("open");
    let positions: Vec<Position> =
        (0..30).flat_map(|s| log.append_blocking(batch("D1", s..s + 1, 40)).expect("append")).collect();
    let known_end = log.end();
    let last = log.segments().pop().expect("segment");
    drop(log);
    std::fs::remove_file(&last.path).expect("remove");
    let (log, report) = EventLog::open_with(
        dir.path(),
        LogOptions { segment_bytes: 1000, known_end: Some(known_end), ..LogOptions::default() },
    )
    .expect("open");
    assert_eq!(report.missing.len(), 1);
    assert_eq!((report.missing[0].from, report.missing[0].to), (last.start, known_end));
    let next = log.append_blocking(batch("D1", 30..31, 40)).expect("append");
    assert_eq!(next[0], known_end);
    assert!(matches!(log.read(*positions.last().expect("last")), Err(LogError::Missing(_))));
    assert_record(&log, next[0], "D1", 30, 40);

    // An empty folder with a known end starts there too.
    let empty = tempfile::tempdir().expect("temp dir");
    let (log, report) =
        EventLog::open_with(empty.path(), LogOptions { known_end: Some(Position(5000)), ..LogOptions::default() })
            .expect("open");
    assert_eq!(report.missing.len(), 1);
    assert_eq!(log.append_blocking(batch("D1", 0..1, 1)).expect("append")[0], Position(5000));
}

/// The last segment's scan starts at the caller's known-good point when it is a record
/// boundary, and at the segment's start when it is not; a torn tail is found either way.
#[test]
fn the_tail_scan_starts_at_a_known_good_point() {
    let dir = tempfile::tempdir().expect("temp dir");
    let positions = ten_records(dir.path());
    let path = dir.path().join(super::segment::file_name(0));
    let len = file_len(&path);
    std::fs::OpenOptions::new().write(true).open(&path).expect("open").set_len(len - 5).expect("cut");
    let scan = |from: Position| {
        let (log, report) =
            EventLog::open_with(dir.path(), LogOptions { scan_from: Some(from), ..LogOptions::default() })
                .expect("open");
        drop(log);
        report
    };
    let report = scan(positions[7]);
    assert_eq!((report.scanned_from, report.records_scanned), (positions[7], 2));
    assert_eq!(report.torn_tail.map(|t| t.position), Some(positions[9]));
    // Already cut: a clean scan from the end.
    let report = scan(positions[9]);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.scanned_from, report.records_scanned), (positions[9], 0));
    // Not a record boundary: from the start.
    let report = scan(Position(positions[7].0 + 1));
    assert_eq!((report.scanned_from, report.records_scanned), (Position(0), 9));
}

/// Reading goes through the checksum every time, so a record changed after it was
/// written (on any segment) never comes back with other bytes.
#[test]
fn a_record_is_never_returned_with_bytes_it_was_not_written_with() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(dir.path());
    let positions = log.append_blocking(batch("D1", 0..3, 40)).expect("append");
    let path = log.segments()[0].path.clone();
    let offset = positions[1].0 + 30;
    flip(&path, offset);
    assert!(
        matches!(log.read(positions[1]), Err(LogError::Corrupt(d)) if matches!(d.reason, CorruptReason::Checksum { .. }))
    );
    flip(&path, offset);
    assert_record(&log, positions[1], "D1", 1, 40);
    let by_device: HashMap<String, usize> = log.iter_from(log.start()).fold(HashMap::new(), |mut m, r| {
        *m.entry(r.expect("intact").1.device().to_string()).or_default() += 1;
        m
    });
    assert_eq!(by_device.get("D1"), Some(&3));
}
