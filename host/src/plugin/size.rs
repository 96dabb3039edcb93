//! Cheap size estimates of canonical values, for the plugins' input and output limits.
use super::bindings::types::{Event, EventBody, Template, User};

/// Approximate bytes of an event: its strings, lists and a fixed overhead per field.
pub fn event_size(event: &Event) -> usize {
    64 + event.id.len() + event.device_id.len() + body_size(&event.body)
}

fn body_size(body: &EventBody) -> usize {
    match body {
        EventBody::Punch(p) => {
            48 + p.user_id.len() + p.work_code.as_ref().map_or(0, String::len) + p.photo.as_ref().map_or(0, Vec::len)
        }
        EventBody::UserUpdate(u) => 16 + user_size(&u.user),
        EventBody::CommandResult(r) => {
            8 + r.operation_id.len() + r.details.iter().map(|(k, v)| 8 + k.len() + v.len()).sum::<usize>()
        }
        EventBody::DeviceStatus(s) => 8 + s.info.iter().map(|(k, v)| 8 + k.len() + v.len()).sum::<usize>(),
    }
}

fn user_size(user: &User) -> usize {
    64 + user.user_id.len()
        + user.first_name.as_ref().map_or(0, String::len)
        + user.last_name.as_ref().map_or(0, String::len)
        + user.photo.as_ref().map_or(0, Vec::len)
        + user.templates.iter().map(template_size).sum::<usize>()
}

fn template_size(t: &Template) -> usize {
    16 + t.data.len()
}
