//! `{{name}}`: a biogate transform plugin. It runs on every event of the routes that list
//! it (`transforms = ["{{name}}"]`), in order, before the route's sink.
use biogate_sdk::prelude::*;

/// The transform.
pub struct Plugin;

impl Transform for Plugin {
    /// Returns the event (changed or not) to pass it on, `vec![]` to drop it, several
    /// events to split it, `TransformError::reject` to dead-letter it, or
    /// `TransformError::retry` to have the gateway try again later (order is kept).
    fn transform(mut event: Event) -> Result<Vec<Event>, TransformError> {
        // An example: punches' user ids get the `prefix` of the plugin's config.
        let prefix: String = config::get_or("prefix", String::new())?;
        if let Some(punch) = event.punch_mut() {
            punch.user_id = format!("{prefix}{}", punch.user_id);
        }
        Ok(vec![event])
    }
}

export_transform!(Plugin);

#[cfg(test)]
mod tests {
    use biogate_sdk::prelude::*;
    use biogate_sdk::testing;

    use super::Plugin;

    #[test]
    fn punches_get_the_configured_prefix() {
        testing::set_config(&[("prefix", "HR-")]);
        let event = testing::punch_event("D1", "42", 1_750_000_000, PunchType::CheckIn);
        let out = Plugin::transform(event).expect("the transform");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].user_id(), Some("HR-42"));
    }
}
