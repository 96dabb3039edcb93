//! Native unit tests of the transform (run with `cargo test` in plugins/).

use biogate_sdk::prelude::*;
use biogate_sdk::testing::{self, punch_event, user_update_event};

use crate::EmployeeMap;

fn table() {
    testing::set_config(&[("map.1", "E1042"), ("map.2", " E1043 "), ("map.SN9.1", "E9001")]);
}

fn user_of(out: &[Event]) -> Vec<&str> {
    out.iter().filter_map(Event::user_id).collect()
}

#[test]
fn punches_and_user_updates_are_rewritten() {
    table();
    let out = EmployeeMap::transform(punch_event("SN1", "1", 0, PunchType::CheckIn)).unwrap();
    assert_eq!(user_of(&out), ["E1042"]);
    let out = EmployeeMap::transform(user_update_event("SN1", "2", 0)).unwrap();
    assert_eq!(user_of(&out), ["E1043"], "codes are trimmed");
}

#[test]
fn the_rest_of_the_event_is_kept() {
    table();
    let mut event = punch_event("SN1", "1", 1_700_000_000, PunchType::BreakOut);
    if let Some(punch) = event.punch_mut() {
        punch.work_code = Some("12".into());
    }
    let mut expected = event.clone();
    if let Some(punch) = expected.punch_mut() {
        punch.user_id = "E1042".into();
    }
    assert_eq!(EmployeeMap::transform(event).unwrap(), vec![expected]);
}

#[test]
fn a_per_device_entry_wins() {
    table();
    let out = EmployeeMap::transform(punch_event("SN9", "1", 0, PunchType::CheckIn)).unwrap();
    assert_eq!(user_of(&out), ["E9001"]);
    let out = EmployeeMap::transform(punch_event("SN9", "2", 0, PunchType::CheckIn)).unwrap();
    assert_eq!(user_of(&out), ["E1043"], "falls back to the global entry");
}

#[test]
fn unmapped_users_pass_by_default() {
    table();
    let event = punch_event("SN1", "77", 0, PunchType::CheckIn);
    assert_eq!(EmployeeMap::transform(event.clone()).unwrap(), vec![event]);
}

#[test]
fn unmapped_users_can_be_dropped() {
    table();
    testing::set_config_value("unmapped", "drop");
    assert!(EmployeeMap::transform(punch_event("SN1", "77", 0, PunchType::CheckIn)).unwrap().is_empty());
}

#[test]
fn unmapped_users_can_be_rejected_with_their_id() {
    table();
    testing::set_config_value("unmapped", "reject");
    let out = EmployeeMap::transform(punch_event("SN1", "77", 0, PunchType::CheckIn));
    assert!(matches!(out, Err(TransformError::Reject(reason)) if reason.contains("`77`")));
}

#[test]
fn a_blank_code_counts_as_unmapped() {
    testing::set_config(&[("map.5", "  "), ("unmapped", "drop")]);
    assert!(EmployeeMap::transform(punch_event("SN1", "5", 0, PunchType::CheckIn)).unwrap().is_empty());
}

#[test]
fn other_events_pass() {
    testing::set_config(&[("unmapped", "reject")]);
    let event = Event::new("e1", "SN1", 3, 0, EventBody::DeviceStatus(DeviceStatus { online: true, info: vec![] }));
    assert_eq!(EmployeeMap::transform(event.clone()).unwrap(), vec![event]);
}

#[test]
fn an_invalid_policy_retries() {
    testing::set_config(&[("unmapped", "ignore")]);
    let out = EmployeeMap::transform(punch_event("SN1", "77", 0, PunchType::CheckIn));
    assert!(matches!(out, Err(TransformError::Retry(reason)) if reason.contains("unmapped")));
}
