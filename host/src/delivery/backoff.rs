//! How a worker retries its head event: the route's schedule decides when the next
//! attempt is due and when the event is dead-lettered; the route's receiver health
//! ([`super::receiver_health`]) may wake the worker earlier, when the receiver answered
//! another worker after this one failed ("the receiver is back"), or when this worker
//! takes the route's probe slot.
//!
//! Early attempts are extra: they do not use up the schedule, so an event is
//! dead-lettered after as many scheduled attempts, and about as late, as without them.
//! The worker never skips its head event: every attempt is of the same event, so order
//! per device holds. Two limits keep early attempts cheap:
//! - a worker accepts "the receiver is back" at once the first time; each such attempt
//!   that fails again doubles its wait before the next one (`EARLY_GAP`, up to
//!   `EARLY_GAP_MAX`, in [`super::receiver_health`]): an event the receiver keeps refusing while it takes others (a
//!   poison message) is not resent on every success of the other devices;
//! - no early attempt goes before the time of the receiver's `Retry-After`.
use std::time::Duration;

use tokio::time::Instant;

use rand::Rng;
use tokio::sync::watch;

use super::receiver_health::ReceiverHealth;
use super::retry::{MAX_RETRY_AFTER, RetrySchedule};

/// Why a wait ended, or what started an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The schedule's next attempt (or the first one).
    Scheduled,
    /// The receiver answered another worker after this one's last attempt.
    ReceiverBack,
    /// This worker probes the route's receiver.
    Probe,
    /// The gateway is shutting down.
    Shutdown,
}

/// The retry state of one head event's output on one route.
pub struct HeadRetry {
    /// Attempts of the schedule that failed (early ones excluded).
    failed: u32,
    /// Attempts made in all, early ones included (the attempt log's numbering).
    attempts: u32,
    /// What started the last attempt.
    last: Wake,
    /// When the last attempt started.
    started: Instant,
    /// When the schedule's next attempt is due.
    deadline: Instant,
    /// The receiver's `Retry-After`: no attempt before.
    not_before: Instant,
    /// Early attempts woken by "the receiver is back" that failed.
    early_failed: u32,
    /// No such attempt before.
    early_not_before: Instant,
    back: watch::Receiver<u64>,
    /// "The receiver is back" was seen and not yet acted on.
    back_pending: bool,
}

impl HeadRetry {
    /// The state before the first attempt.
    pub fn new(health: &ReceiverHealth) -> Self {
        let now = Instant::now();
        HeadRetry {
            failed: 0,
            attempts: 0,
            last: Wake::Scheduled,
            started: now,
            deadline: now,
            not_before: now,
            early_failed: 0,
            early_not_before: now,
            back: health.subscribe(),
            back_pending: false,
        }
    }

    /// Call right before each attempt; returns its number (1 for the first).
    pub fn attempt(&mut self, health: &ReceiverHealth) -> u32 {
        self.back.borrow_and_update();
        self.back_pending = false;
        self.started = Instant::now();
        health.attempting(self.started);
        self.attempts += 1;
        self.attempts
    }

    /// What started the last attempt.
    pub fn last(&self) -> Wake {
        self.last
    }

    /// The last attempt failed, the receiver asking for `retry_after`. Returns the wait
    /// until the schedule's next attempt, or `None` when the schedule is used up (the
    /// event is dead-lettered).
    pub fn failed(
        &mut self,
        health: &ReceiverHealth,
        schedule: &RetrySchedule,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let now = Instant::now();
        let pacing = health.pacing();
        if let Some(asked) = retry_after {
            self.not_before = self.not_before.max(now + asked.min(MAX_RETRY_AFTER));
        }
        match self.last {
            Wake::Scheduled | Wake::Shutdown => {
                self.failed += 1;
                self.deadline = now + schedule.delay_after(self.failed, retry_after)?;
            }
            Wake::ReceiverBack => {
                self.early_failed += 1;
                let doublings = self.early_failed.saturating_sub(1).min(16);
                let gap = pacing.early_gap.saturating_mul(1 << doublings).min(pacing.early_gap_max);
                self.early_not_before = now + gap;
            }
            Wake::Probe => {}
        }
        self.deadline = self.deadline.max(self.not_before);
        Some(self.deadline.saturating_duration_since(now))
    }

    /// Waits for the next attempt: the schedule's, or an early one (the receiver is
    /// back, or this worker probes), or shutdown.
    pub async fn wait(&mut self, health: &ReceiverHealth, shutdown: &mut watch::Receiver<bool>) -> Wake {
        let wake = loop {
            if *shutdown.borrow() {
                return Wake::Shutdown;
            }
            let now = Instant::now();
            if now >= self.deadline {
                break Wake::Scheduled;
            }
            if !self.back_pending {
                self.back_pending = self.back.has_changed().unwrap_or(false) || health.answered_since(self.started);
            }
            let early_from = self.not_before.max(self.early_not_before);
            if self.back_pending && now >= early_from {
                break Wake::ReceiverBack;
            }
            let probe_at = health.probe_due().max(self.not_before);
            if now >= probe_at && health.take_probe() {
                break Wake::Probe;
            }
            // Spread the waiting workers' looks at the probe slot a little.
            let jitter = rand::rng().random_range(Duration::ZERO..health.pacing().probe_every / 10);
            let mut until = self.deadline.min(probe_at.max(now) + jitter);
            if self.back_pending {
                until = until.min(early_from);
            }
            let back_pending = self.back_pending;
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = self.back.changed(), if !back_pending => {}
                _ = shutdown.changed() => {}
            }
        };
        self.last = wake;
        wake
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::receiver_health::Pacing;

    const PROBE: Duration = Duration::from_millis(200);
    const GAP: Duration = Duration::from_millis(300);

    fn health() -> ReceiverHealth {
        ReceiverHealth::new(Pacing { probe_every: PROBE, early_gap: GAP, early_gap_max: GAP * 4 })
    }

    fn schedule(delays: &[u64]) -> RetrySchedule {
        RetrySchedule::new(delays.iter().map(|s| Duration::from_secs(*s)).collect())
    }

    /// Someone else sends to the route all the time, so no probe is due.
    async fn keep_busy(health: &ReceiverHealth) {
        loop {
            health.attempting(Instant::now());
            tokio::time::sleep(PROBE / 4).await;
        }
    }

    /// A receiver that answers another worker wakes a worker asleep in an hour-long
    /// backoff at once, and that early attempt does not use up the schedule.
    #[tokio::test]
    async fn the_receiver_back_wakes_a_long_backoff_without_using_up_the_schedule() {
        let health = health();
        let (_tx, mut shutdown) = watch::channel(false);
        let schedule = schedule(&[3600, 3600]);
        let mut retry = HeadRetry::new(&health);
        assert_eq!(retry.attempt(&health), 1);
        health.failed(None);
        assert!(retry.failed(&health, &schedule, None).unwrap() > Duration::from_secs(3000));
        let started = Instant::now();
        let other = async {
            tokio::time::sleep(PROBE / 4).await;
            health.answered();
        };
        let wake = tokio::select! {
            w = async { tokio::join!(retry.wait(&health, &mut shutdown), other).0 } => w,
            _ = keep_busy(&health) => unreachable!(),
        };
        assert_eq!(wake, Wake::ReceiverBack);
        assert!(started.elapsed() < PROBE, "{:?}", started.elapsed());
        assert_eq!(retry.attempt(&health), 2);
        health.failed(None);
        assert!(retry.failed(&health, &schedule, None).is_some(), "an early attempt that fails keeps the schedule");
        assert_eq!(retry.attempt(&health), 3, "the schedule's second attempt");
        assert!(retry.failed(&health, &schedule, None).is_some());
    }

    /// A 2xx that came between this worker's attempt and its failure is not missed.
    #[tokio::test]
    async fn an_answer_during_the_failed_attempt_wakes_at_once() {
        let health = health();
        let (_tx, mut shutdown) = watch::channel(false);
        let mut retry = HeadRetry::new(&health);
        retry.attempt(&health);
        health.answered();
        health.failed(None);
        retry.failed(&health, &schedule(&[3600]), None);
        let started = Instant::now();
        assert_eq!(retry.wait(&health, &mut shutdown).await, Wake::ReceiverBack);
        assert!(started.elapsed() < PROBE / 2);
    }

    /// When nothing else reaches the receiver, one of two waiting workers probes within
    /// the probe interval; the other does not.
    #[tokio::test]
    async fn one_waiting_worker_probes_a_silent_route() {
        let health = health();
        let (_tx, shutdown) = watch::channel(false);
        let schedule = schedule(&[3600]);
        let mut a = HeadRetry::new(&health);
        let mut b = HeadRetry::new(&health);
        for r in [&mut a, &mut b] {
            r.attempt(&health);
            health.failed(None);
            r.failed(&health, &schedule, None);
        }
        let started = Instant::now();
        let (mut sa, mut sb) = (shutdown.clone(), shutdown.clone());
        let first = tokio::select! {
            w = a.wait(&health, &mut sa) => w,
            w = b.wait(&health, &mut sb) => w,
        };
        assert_eq!(first, Wake::Probe);
        let waited = started.elapsed();
        assert!(waited >= PROBE * 9 / 10 && waited < PROBE * 2, "{waited:?}");
        assert!(!health.take_probe(), "one probe per interval");
    }

    /// An early attempt that fails makes the worker wait the early gap before the next
    /// "receiver is back"; Retry-After holds every early attempt back.
    #[tokio::test]
    async fn failed_early_attempts_back_off_and_retry_after_is_respected() {
        let health = health();
        let (_tx, mut shutdown) = watch::channel(false);
        let schedule = schedule(&[3600]);
        let mut retry = HeadRetry::new(&health);
        retry.attempt(&health);
        health.failed(None);
        retry.failed(&health, &schedule, None);
        health.answered();
        assert_eq!(retry.wait(&health, &mut shutdown).await, Wake::ReceiverBack);
        retry.attempt(&health);
        health.failed(None);
        retry.failed(&health, &schedule, None);
        health.answered();
        let started = Instant::now();
        let wake =
            tokio::select! { w = retry.wait(&health, &mut shutdown) => w, _ = keep_busy(&health) => unreachable!() };
        assert_eq!(wake, Wake::ReceiverBack);
        assert!(started.elapsed() >= GAP, "{:?}", started.elapsed());

        let health = self::health();
        let mut retry = HeadRetry::new(&health);
        retry.attempt(&health);
        health.failed(Some(Duration::from_secs(1)));
        retry.failed(&health, &schedule, Some(Duration::from_secs(1)));
        let started = Instant::now();
        // Nobody else sends: the probe waits for the Retry-After too.
        assert_eq!(retry.wait(&health, &mut shutdown).await, Wake::Probe);
        assert!(started.elapsed() >= Duration::from_millis(990), "{:?}", started.elapsed());
    }

    /// Scheduled attempts still run out into a dead letter.
    #[tokio::test]
    async fn the_schedule_still_ends_in_a_dead_letter() {
        let health = health();
        let (_tx, mut shutdown) = watch::channel(false);
        let schedule = RetrySchedule::new(vec![Duration::from_millis(20); 2]);
        let mut retry = HeadRetry::new(&health);
        for _ in 0..2 {
            retry.attempt(&health);
            assert!(retry.failed(&health, &schedule, None).is_some());
            assert_eq!(retry.wait(&health, &mut shutdown).await, Wake::Scheduled);
        }
        assert_eq!(retry.attempt(&health), 3);
        assert_eq!(retry.failed(&health, &schedule, None), None);
    }

    #[tokio::test]
    async fn shutdown_ends_the_wait() {
        let health = health();
        let (tx, mut shutdown) = watch::channel(false);
        let mut retry = HeadRetry::new(&health);
        retry.attempt(&health);
        retry.failed(&health, &schedule(&[3600]), None);
        let stop = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(true).unwrap();
        };
        let wake = tokio::select! { w = async { tokio::join!(retry.wait(&health, &mut shutdown), stop).0 } => w, _ = keep_busy(&health) => unreachable!() };
        assert_eq!(wake, Wake::Shutdown);
    }
}
