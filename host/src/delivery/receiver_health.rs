//! What the workers of one route know together about its receiver. Each worker retries
//! its own head event on the route's schedule (5 s, 5 min, 30 min, ... by default); this
//! adds what makes a receiver that comes back useful again within seconds, whatever the
//! schedule and however long it was away:
//!
//! - **the receiver is back**: a 2xx after a failure bumps a generation that every worker
//!   asleep in a backoff watches; they all retry their head event at once (see
//!   [`super::backoff`] for how often one worker accepts such a wake-up);
//! - **the probe**: while nothing is sent to the receiver (no attempt on the route for
//!   [`PROBE_EVERY`]), one waiting worker, whichever takes the slot first, retries its
//!   head event early. A dead receiver sees about one request per route every
//!   [`PROBE_EVERY`], not one per device; the probe that gets a 2xx wakes the others.
//!
//! The receiver's `Retry-After` holds the probes back until the time it asked for.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::watch;

/// How long a route's receiver goes without any request while its workers wait, before
/// one of them probes it. A receiver that comes back is found within this (plus one
/// request), which keeps "every waiting device resumes within 5 s" true.
pub const PROBE_EVERY: Duration = Duration::from_secs(3);

/// The wait before accepting another "receiver is back" after one that failed (see
/// [`super::backoff`]); it doubles with each one that fails.
pub const EARLY_GAP: Duration = Duration::from_secs(5);
/// The longest such wait.
pub const EARLY_GAP_MAX: Duration = Duration::from_secs(300);

/// How often early attempts may go (the defaults above; tests shorten them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// See [`PROBE_EVERY`].
    pub probe_every: Duration,
    /// See [`EARLY_GAP`].
    pub early_gap: Duration,
    /// See [`EARLY_GAP_MAX`].
    pub early_gap_max: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing { probe_every: PROBE_EVERY, early_gap: EARLY_GAP, early_gap_max: EARLY_GAP_MAX }
    }
}

/// Shared by the workers of one route.
pub struct ReceiverHealth {
    pacing: Pacing,
    epoch: Instant,
    /// Bumped by a 2xx that follows a failure.
    back: watch::Sender<u64>,
    /// A failure was seen since the last bump.
    failed_since_back: AtomicBool,
    /// Microseconds since `epoch` (+1, so 0 means never) of the last attempt started on
    /// the route, by any worker.
    last_attempt: AtomicU64,
    /// Same clock: the last 2xx.
    last_success: AtomicU64,
    /// Same clock: no probe before this (the receiver's `Retry-After`).
    hold_until: AtomicU64,
}

impl Default for ReceiverHealth {
    fn default() -> Self {
        ReceiverHealth::new(Pacing::default())
    }
}

impl ReceiverHealth {
    /// A route's receiver health with this pacing.
    pub fn new(pacing: Pacing) -> Self {
        ReceiverHealth {
            pacing,
            epoch: Instant::now(),
            back: watch::Sender::new(0),
            failed_since_back: AtomicBool::new(false),
            last_attempt: AtomicU64::new(0),
            last_success: AtomicU64::new(0),
            hold_until: AtomicU64::new(0),
        }
    }

    /// How often early attempts may go.
    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    fn stamp(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_micros() as u64 + 1
    }

    fn instant(&self, stamp: u64) -> Instant {
        self.epoch + Duration::from_micros(stamp.saturating_sub(1))
    }

    /// The "receiver is back" generation, for a worker to watch.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.back.subscribe()
    }

    /// A worker is about to send (at `at`).
    pub fn attempting(&self, at: Instant) {
        self.last_attempt.fetch_max(self.stamp(at), Ordering::SeqCst);
    }

    /// The receiver answered an attempt (a 2xx, or an answer that is not a failure to
    /// retry). Wakes the waiting workers when it follows a failure.
    pub fn answered(&self) {
        self.last_success.fetch_max(self.stamp(Instant::now()), Ordering::SeqCst);
        if self.failed_since_back.load(Ordering::SeqCst) && self.failed_since_back.swap(false, Ordering::SeqCst) {
            self.back.send_modify(|generation| *generation += 1);
            tracing::debug!("the receiver answers again; waking the route's waiting workers");
        }
    }

    /// An attempt failed (to be retried); `retry_after` is what the receiver asked for.
    pub fn failed(&self, retry_after: Option<Duration>) {
        self.failed_since_back.store(true, Ordering::SeqCst);
        if let Some(wait) = retry_after {
            self.hold_until.fetch_max(self.stamp(Instant::now() + wait), Ordering::SeqCst);
        }
    }

    /// Whether the receiver answered after `at` (an attempt that failed meanwhile may have
    /// missed the wake-up of that answer).
    pub fn answered_since(&self, at: Instant) -> bool {
        self.last_success.load(Ordering::SeqCst) >= self.stamp(at)
    }

    /// When the next probe may go: [`PROBE_EVERY`] after the route's last attempt, and
    /// not before the receiver's `Retry-After`.
    pub fn probe_due(&self) -> Instant {
        self.probe_due_after(self.last_attempt.load(Ordering::SeqCst))
    }

    fn probe_due_after(&self, last_attempt: u64) -> Instant {
        let hold = self.instant(self.hold_until.load(Ordering::SeqCst));
        (self.instant(last_attempt) + self.pacing.probe_every).max(hold)
    }

    /// Takes the probe slot if a probe is due: true for one worker, which then sends
    /// (the slot counts as the route's latest attempt).
    pub fn take_probe(&self) -> bool {
        let now = Instant::now();
        let last = self.last_attempt.load(Ordering::SeqCst);
        if now < self.probe_due_after(last) {
            return false;
        }
        self.last_attempt.compare_exchange(last, self.stamp(now), Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_2xx_after_a_failure_bumps_the_generation_once() {
        let health = ReceiverHealth::default();
        let mut back = health.subscribe();
        health.answered();
        assert!(!back.has_changed().unwrap(), "nothing failed: nobody to wake");
        health.failed(None);
        health.failed(None);
        health.answered();
        assert!(back.has_changed().unwrap());
        back.borrow_and_update();
        health.answered();
        assert!(!back.has_changed().unwrap(), "one wake-up per recovery");
    }

    #[tokio::test]
    async fn one_probe_per_interval_and_none_before_retry_after() {
        let health = ReceiverHealth::new(Pacing { probe_every: Duration::from_millis(50), ..Pacing::default() });
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(health.take_probe());
        assert!(!health.take_probe(), "the slot is taken until the next interval");
        tokio::time::sleep(Duration::from_millis(60)).await;
        health.failed(Some(Duration::from_secs(60)));
        assert!(!health.take_probe(), "the receiver asked for 60 s");
        assert!(health.probe_due() > Instant::now() + Duration::from_secs(50));
    }

    #[test]
    fn an_answer_after_an_attempt_started_is_seen() {
        let health = ReceiverHealth::default();
        let started = Instant::now();
        assert!(!health.answered_since(started));
        health.answered();
        assert!(health.answered_since(started));
    }
}
