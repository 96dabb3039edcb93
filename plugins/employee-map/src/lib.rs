//! `employee-map`: rewrites the user ids of punches and user updates from device user
//! ids to HR employee codes, from a table in the plugin's config. See this plugin's
//! README.md for the configuration.

use biogate_sdk::prelude::*;

mod table;

use table::Unmapped;

/// The transform.
pub struct EmployeeMap;

impl Transform for EmployeeMap {
    fn transform(mut event: Event) -> Result<Vec<Event>, TransformError> {
        let device_id = event.device_id.clone();
        let Some(user_id) = event.user_id_mut() else {
            return Ok(vec![event]);
        };
        if let Some(code) = table::employee_code(&device_id, user_id) {
            *user_id = code;
            return Ok(vec![event]);
        }
        match config::get_or("unmapped", Unmapped::Pass)? {
            Unmapped::Pass => Ok(vec![event]),
            Unmapped::Drop => {
                debug!(device = device_id, user = user_id; "dropped an event of an unmapped user");
                Ok(vec![])
            }
            Unmapped::Reject => Err(TransformError::reject(format!(
                "device user id `{user_id}` (device `{device_id}`) has no employee code in the map"
            ))),
        }
    }
}

export_transform!(EmployeeMap);

#[cfg(test)]
mod tests;
