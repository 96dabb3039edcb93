//! Native unit tests of the transform (run with `cargo test` in plugins/).

use biogate_sdk::prelude::*;
use biogate_sdk::testing::{self, punch_event};

use crate::DedupeWindow;

const T0: i64 = 1_700_000_000;

fn run(event: Event) -> Result<Vec<Event>, TransformError> {
    DedupeWindow::transform(event)
}

/// Whether the event passed (unchanged) rather than being dropped.
fn passes(event: Event) -> bool {
    match run(event.clone()) {
        Ok(out) if out.is_empty() => false,
        Ok(out) => {
            assert_eq!(out, vec![event], "passes unchanged");
            true
        }
        Err(err) => panic!("unexpected error {err:?}"),
    }
}

fn punch(device: &str, user: &str, at: i64, kind: PunchType) -> Event {
    let mut event = punch_event(device, user, at, kind);
    event.id = format!("{device}-{user}-{at}-{kind}");
    event
}

#[test]
fn repeat_within_the_window_is_dropped() {
    assert!(passes(punch("D1", "7", T0, PunchType::CheckIn)));
    assert!(!passes(punch("D1", "7", T0 + 59, PunchType::CheckIn)));
    assert!(passes(punch("D1", "7", T0 + 60, PunchType::CheckIn)));
    let dropped = testing::logs().into_iter().filter(|l| l.message.contains("repeated")).count();
    assert_eq!(dropped, 1);
}

#[test]
fn window_is_measured_from_the_last_accepted_punch() {
    assert!(passes(punch("D1", "7", T0, PunchType::CheckIn)));
    assert!(!passes(punch("D1", "7", T0 + 40, PunchType::CheckIn)));
    // 80 s after the accepted punch, although only 40 s after the dropped one.
    assert!(passes(punch("D1", "7", T0 + 80, PunchType::CheckIn)));
}

#[test]
fn other_users_and_devices_are_independent() {
    assert!(passes(punch("D1", "7", T0, PunchType::CheckIn)));
    assert!(passes(punch("D1", "8", T0 + 1, PunchType::CheckIn)));
    assert!(passes(punch("D2", "7", T0 + 2, PunchType::CheckIn)));
}

#[test]
fn a_different_punch_type_is_not_a_repeat_by_default() {
    assert!(passes(punch("D1", "7", T0, PunchType::CheckIn)));
    assert!(passes(punch("D1", "7", T0 + 10, PunchType::CheckOut)));
    // Compared with the check-out, the last accepted punch.
    assert!(passes(punch("D1", "7", T0 + 20, PunchType::CheckIn)));
}

#[test]
fn same_type_only_false_drops_any_punch_in_the_window() {
    testing::set_config(&[("same_type_only", "false")]);
    assert!(passes(punch("D1", "7", T0, PunchType::CheckIn)));
    assert!(!passes(punch("D1", "7", T0 + 10, PunchType::CheckOut)));
}

#[test]
fn window_is_configurable_and_zero_disables() {
    testing::set_config(&[("window_seconds", "300")]);
    assert!(passes(punch("D1", "7", T0, PunchType::CheckIn)));
    assert!(!passes(punch("D1", "7", T0 + 299, PunchType::CheckIn)));
    testing::set_config(&[("window_seconds", "0")]);
    assert!(passes(punch("D1", "7", T0 + 300, PunchType::CheckIn)));
    assert!(passes(punch("D1", "7", T0 + 300, PunchType::CheckIn)));
}

#[test]
fn uses_the_device_clock_not_the_gateway_clock() {
    testing::set_now_ms(0);
    assert!(passes(punch("D1", "7", T0, PunchType::CheckIn)));
    testing::advance_ms(3_600_000);
    assert!(!passes(punch("D1", "7", T0 + 5, PunchType::CheckIn)));
}

#[test]
fn earlier_punch_inside_the_window_is_a_repeat_too() {
    assert!(passes(punch("D1", "7", T0, PunchType::CheckIn)));
    assert!(!passes(punch("D1", "7", T0 - 30, PunchType::CheckIn)));
    assert!(passes(punch("D1", "7", T0 - 3600, PunchType::CheckIn)));
}

#[test]
fn redelivery_of_an_accepted_punch_passes_again() {
    let first = punch("D1", "7", T0, PunchType::CheckIn);
    assert!(passes(first.clone()));
    assert!(passes(first));
}

#[test]
fn other_events_pass_untouched_without_state() {
    let update = testing::user_update_event("D1", "7", T0);
    assert!(passes(update));
    assert!(testing::kv_entries().is_empty());
}

#[test]
fn bad_config_retries_instead_of_dropping() {
    testing::set_config(&[("window_seconds", "a minute")]);
    let out = run(punch("D1", "7", T0, PunchType::CheckIn));
    assert!(matches!(out, Err(TransformError::Retry(reason)) if reason.contains("window_seconds")));
}

#[test]
fn store_outage_retries() {
    testing::set_kv_failure(Some(KvError::Storage("disk full".into())));
    let out = run(punch("D1", "7", T0, PunchType::CheckIn));
    assert!(matches!(out, Err(TransformError::Retry(_))));
}

#[test]
fn unreadable_state_is_ignored() {
    testing::kv_insert(&crate::last_punch::key("D1", "7"), "not a record");
    assert!(passes(punch("D1", "7", T0, PunchType::CheckIn)));
    assert!(!passes(punch("D1", "7", T0 + 1, PunchType::CheckIn)));
}
