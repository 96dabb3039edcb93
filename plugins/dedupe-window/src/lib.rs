//! `dedupe-window`: drops a repeated punch of the same user on the same device within a
//! time window. See this plugin's README.md for the behaviour and the configuration.

use biogate_sdk::prelude::*;

mod last_punch;
mod settings;

use last_punch::LastPunch;
use settings::Settings;

/// The transform.
pub struct DedupeWindow;

impl Transform for DedupeWindow {
    fn transform(event: Event) -> Result<Vec<Event>, TransformError> {
        let Some(punch) = event.punch() else {
            return Ok(vec![event]);
        };
        let settings = Settings::load()?;
        let key = last_punch::key(&event.device_id, &punch.user_id);
        let current = LastPunch::of(&event.id, punch);

        match LastPunch::load(&key)? {
            // The very punch we accepted before, delivered again (retry, replay): it
            // passes again, or a failed delivery would turn into a lost punch.
            Some(previous) if previous.event_id == current.event_id => {}
            Some(previous) if settings.is_duplicate(&previous, &current) => {
                debug!(
                    device = event.device_id,
                    user = punch.user_id,
                    previous_event = previous.event_id,
                    seconds_apart = current.unix_seconds.abs_diff(previous.unix_seconds);
                    "dropped a repeated punch"
                );
                return Ok(vec![]);
            }
            _ => current.store(&key)?,
        }
        Ok(vec![event])
    }
}

export_transform!(DedupeWindow);

#[cfg(test)]
mod tests;
