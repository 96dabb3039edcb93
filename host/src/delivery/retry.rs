//! When to try again: an exponential schedule with jitter, honouring `Retry-After`.
use std::time::Duration;

use rand::Rng;

/// Standard Webhooks' schedule: after the first attempt fails, wait 5 s, 5 min, 30 min,
/// 2 h, 5 h, 10 h, 14 h, 20 h and 24 h between the next attempts (ten attempts over
/// about three days).
pub const DEFAULT_SCHEDULE: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A route's retry schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule { delays: DEFAULT_SCHEDULE.to_vec() }
    }
}

impl RetrySchedule {
    /// A schedule of these waits between attempts.
    pub fn new(delays: Vec<Duration>) -> Self {
        RetrySchedule { delays }
    }

    /// Parses human durations (`["1s", "30s", "5m"]`).
    pub fn parse(items: &[String]) -> Result<Self, String> {
        items
            .iter()
            .map(|s| humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(RetrySchedule::new)
    }

    /// How many attempts an event gets in all.
    pub fn attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }

    /// The wait after `failed` attempts have failed (1 after the first), or `None` when
    /// the attempts are used up. Jitter of ±10% spreads a herd of retries; a receiver's
    /// `Retry-After` is honoured when it asks for longer.
    pub fn delay_after(&self, failed: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let base = *self.delays.get(failed.checked_sub(1)? as usize)?;
        let jitter = rand::rng().random_range(0.9..=1.1);
        let delay = base.mul_f64(jitter);
        Some(match retry_after {
            Some(asked) => delay.max(asked.min(MAX_RETRY_AFTER)),
            None => delay,
        })
    }
}

/// Parses a `Retry-After` header: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let now = chrono::Utc::now();
    (when.with_timezone(&chrono::Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_gives_ten_attempts_with_bounded_jitter() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 10);
        let first = s.delay_after(1, None).unwrap();
        assert!(first >= Duration::from_millis(4500) && first <= Duration::from_millis(5500), "{first:?}");
        assert!(s.delay_after(9, None).unwrap() >= Duration::from_secs(21 * 3600));
        assert_eq!(s.delay_after(10, None), None);
        assert_eq!(s.delay_after(0, None), None);
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let s = RetrySchedule::new(vec![Duration::from_secs(1)]);
        assert_eq!(s.delay_after(1, Some(Duration::from_secs(60))), Some(Duration::from_secs(60)));
        assert!(s.delay_after(1, Some(Duration::from_millis(1))).unwrap() < Duration::from_secs(2));
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None, "a past date means no wait");
        assert_eq!(parse_retry_after("soon"), None);
        assert!(RetrySchedule::parse(&["1s".into(), "5m".into()]).is_ok());
        assert!(RetrySchedule::parse(&["5 parsecs".into()]).is_err());
    }
}
