//! The gateway's clock.
//!
//! Prefer the times carried by events (a punch's `log_time`, an event's
//! `received_at_ms`) for decisions about events: they stay the same when events are
//! retried or replayed, the clock does not. In native tests the clock can be frozen with
//! `testing::set_now_ms`.

/// Milliseconds since the Unix epoch (UTC), from the gateway.
pub fn now_ms() -> u64 {
    crate::backend::now_ms()
}

#[cfg(test)]
mod tests {
    #[test]
    fn frozen_and_advanced() {
        assert!(super::now_ms() > 1_600_000_000_000, "real time before freezing");
        crate::testing::set_now_ms(1_000);
        crate::testing::advance_ms(500);
        assert_eq!(super::now_ms(), 1_500);
    }
}
