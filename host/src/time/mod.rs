//! Time: the wall clock, UTC offsets (one parser for the whole gateway) and the time
//! texts devices and clients exchange (`YYYY-MM-DD HH:MM:SS GMT +HHMM`, RFC 3339).
mod offset;
mod text;

use std::time::{SystemTime, UNIX_EPOCH};

pub use offset::{MAX_OFFSET_MINUTES, format_utc_offset, parse_utc_offset};
pub use text::{CamsTimeError, format_cams_time, format_wall_time, parse_cams_time, parse_cams_time_with_default};

/// Milliseconds since the Unix epoch (UTC).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
