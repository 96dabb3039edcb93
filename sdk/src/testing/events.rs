//! Ready-made events for tests.

use crate::prelude::{DeviceTime, Event, EventBody, Punch, PunchType, User, UserUpdate};

/// A punch event of `user_id` on `device_id` at `unix_seconds` (UTC offset 0), with
/// sequence 1, `received_at_ms` equal to the punch time, and id `"<device>-<seconds>"`.
/// Change the fields you care about afterwards.
pub fn punch_event(device_id: &str, user_id: &str, unix_seconds: i64, punch_type: PunchType) -> Event {
    let mut punch = Punch::new(user_id, DeviceTime::new(unix_seconds, 0));
    punch.punch_type = punch_type;
    event(device_id, unix_seconds, EventBody::Punch(punch))
}

/// A user-update event for `user_id` on `device_id` at `unix_seconds` (UTC offset 0).
pub fn user_update_event(device_id: &str, user_id: &str, unix_seconds: i64) -> Event {
    let update = UserUpdate { user: User::new(user_id), operation_time: DeviceTime::new(unix_seconds, 0) };
    event(device_id, unix_seconds, EventBody::UserUpdate(update))
}

fn event(device_id: &str, unix_seconds: i64, body: EventBody) -> Event {
    let received_at_ms = u64::try_from(unix_seconds).unwrap_or(0).saturating_mul(1000);
    Event::new(format!("{device_id}-{unix_seconds}"), device_id, 1, received_at_ms, body)
}
