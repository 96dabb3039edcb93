//! LoadLog: pages of a device's punches in a log-time range, answered from the journal
//! without asking the device.
//!
//! Order is (log time, sequence). The first page takes a snapshot (the device's highest
//! sequence at that moment) and counts the range; the `OffSet` token carries both plus
//! the position reached, so later pages neither skip nor repeat a punch even while new
//! punches arrive (those belong to the next query). One request spans at most 30 days.

use super::catalogue::{FieldError, TimeSpan, span_range};
use crate::plugin::bindings::types::{Event, EventBody};
use crate::store::{Device, Journal, PunchCursor, StoreError};

/// Longest range one request may cover.
pub const MAX_SPAN_SECONDS: i64 = 30 * 86_400;

/// Why a page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum LoadLogError {
    #[error(transparent)]
    Field(FieldError),
    /// The range covers more than 30 days.
    #[error("the range covers more than 30 days; split it")]
    SpanTooLong,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One page.
#[derive(Debug)]
pub struct LogPage {
    /// Punches in the whole range (as of the first page), when counted.
    pub actual_row_count: Option<u64>,
    pub events: Vec<Event>,
    /// Token for the next page; empty when this is the last.
    pub next_offset: String,
}

/// Where paging stands, carried by the `OffSet` token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    snapshot: u64,
    count: u64,
    after: Option<PunchCursor>,
}

impl Position {
    fn encode(&self) -> String {
        match self.after {
            Some(c) => format!("v1.{}.{}.{}.{}", self.snapshot, self.count, c.unix_seconds, c.sequence),
            None => format!("v1.{}.{}", self.snapshot, self.count),
        }
    }

    fn decode(text: &str) -> Option<Position> {
        let mut parts = text.trim().split('.');
        if parts.next()? != "v1" {
            return None;
        }
        let snapshot = parts.next()?.parse().ok()?;
        let count = parts.next()?.parse().ok()?;
        let after = match (parts.next(), parts.next()) {
            (Some(t), Some(s)) => Some(PunchCursor { unix_seconds: t.parse().ok()?, sequence: s.parse().ok()? }),
            (None, None) => None,
            _ => return None,
        };
        parts.next().is_none().then_some(Position { snapshot, count, after })
    }
}

/// The cursor just after `event` in log-time order (punches only).
pub fn cursor_of(event: &Event) -> Option<PunchCursor> {
    match &event.body {
        EventBody::Punch(p) => Some(PunchCursor { unix_seconds: p.log_time.unix_seconds, sequence: event.sequence }),
        _ => None,
    }
}

/// A query over one device's punches.
pub struct PunchQuery<'a> {
    pub span: &'a TimeSpan,
    /// The `OffSet` of the previous page; empty for the first.
    pub offset: &'a str,
    /// Only this user's punches (not counted: `actual_row_count` is `None`).
    pub user_id: Option<&'a str>,
    pub page_size: usize,
    /// The field names used in errors (`Load.PunchLog.Filter` or `query`).
    pub field_prefix: &'a str,
}

/// Serves one page.
pub async fn load_page(journal: &Journal, device: &Device, query: &PunchQuery<'_>) -> Result<LogPage, LoadLogError> {
    let range = span_range("span", query.span, device.utc_offset_minutes).map_err(|e| {
        let name = if e.field.ends_with("start_time") { "StartTime" } else { "EndTime" };
        LoadLogError::Field(FieldError::new(format!("{}.{name}", query.field_prefix), e.problem))
    })?;
    let (from, to) = (range.start.unix_seconds, range.end.unix_seconds);
    if to - from > MAX_SPAN_SECONDS {
        return Err(LoadLogError::SpanTooLong);
    }
    let position = if query.offset.trim().is_empty() {
        let snapshot = journal.snapshot(&device.id).await?;
        let count = if query.user_id.is_none() { journal.count_punches(&device.id, from, to)? } else { 0 };
        Position { snapshot, count, after: None }
    } else {
        Position::decode(query.offset).ok_or_else(|| {
            LoadLogError::Field(FieldError::new(
                format!("{}.OffSet", query.field_prefix),
                "not an OffSet this gateway gave",
            ))
        })?
    };
    let page_size = query.page_size.max(1);
    let mut events = Vec::with_capacity(page_size.min(1024));
    let mut after = position.after;
    let mut exhausted = false;
    while events.len() < page_size {
        let batch = journal.punches(&device.id, from, to, after, position.snapshot, page_size - events.len())?;
        let Some(last) = batch.last() else {
            exhausted = true;
            break;
        };
        after = cursor_of(last);
        let short = batch.len() < page_size - events.len();
        events.extend(batch.into_iter().filter(|e| match (&e.body, query.user_id) {
            (EventBody::Punch(p), Some(uid)) => p.user_id == uid,
            _ => true,
        }));
        if short {
            exhausted = true;
            break;
        }
    }
    let next_offset = if exhausted || after.is_none() {
        String::new()
    } else {
        // A full page: there may be more. The next request finds out (an empty last
        // page is possible when the range ends exactly at a page boundary).
        let more = journal.punches(&device.id, from, to, after, position.snapshot, 1)?;
        if more.is_empty() { String::new() } else { Position { after, ..position }.encode() }
    };
    Ok(LogPage { actual_row_count: query.user_id.is_none().then_some(position.count), events, next_offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_reject_garbage() {
        let p = Position { snapshot: 9, count: 1200, after: Some(PunchCursor { unix_seconds: -5, sequence: 77 }) };
        assert_eq!(Position::decode(&p.encode()), Some(p));
        let first = Position { snapshot: 9, count: 3, after: None };
        assert_eq!(Position::decode(&first.encode()), Some(first));
        for bad in ["", "v2.1.2", "v1.x.2", "v1.1.2.3", "v1.1.2.3.4.5"] {
            assert_eq!(Position::decode(bad), None, "{bad:?}");
        }
    }
}
