//! How many log lines one plugin may cause: a plugin failing on every event (a panic
//! writes several lines to stderr, and each failure is logged) must not flood the log. Up
//! to [`BURST`] lines per [`WINDOW`] are logged; the rest are counted, and the next line
//! logged after the window says how many were left out.
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines logged per window at most.
pub const BURST: u32 = 20;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(10);

struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

/// One plugin's budget of log lines (its instances share it).
pub struct LogBudget(Mutex<Window>);

/// What to do with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Log it; `suppressed` lines were left out before it (say so when not 0).
    Log { suppressed: u64 },
    /// Leave it out (counted).
    Suppress,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget(Mutex::new(Window { started: Instant::now(), logged: 0, suppressed: 0 }))
    }
}

impl LogBudget {
    /// Whether a line may be logged now.
    pub fn admit(&self) -> Admit {
        self.admit_at(Instant::now())
    }

    /// Runs `line` (a `tracing` call) if the budget allows, saying first how many lines of
    /// `plugin` were left out since the last one logged.
    pub fn log(&self, plugin: &str, line: impl FnOnce()) {
        if let Admit::Log { suppressed } = self.admit() {
            if suppressed > 0 {
                tracing::warn!(
                    plugin,
                    suppressed,
                    "plugin log lines left out (more than {BURST} in {} s)",
                    WINDOW.as_secs()
                );
            }
            line();
        }
    }

    fn admit_at(&self, now: Instant) -> Admit {
        let mut window = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(window.started) >= WINDOW {
            let suppressed = window.suppressed;
            *window = Window { started: now, logged: 1, suppressed: 0 };
            return Admit::Log { suppressed };
        }
        if window.logged < BURST {
            window.logged += 1;
            return Admit::Log { suppressed: 0 };
        }
        window.suppressed += 1;
        metrics::counter!("biogate_plugin_log_lines_suppressed_total").increment(1);
        Admit::Suppress
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_logged_the_rest_counted_and_reported_with_the_next_window() {
        let budget = LogBudget::default();
        let start = Instant::now();
        for _ in 0..BURST {
            assert_eq!(budget.admit_at(start), Admit::Log { suppressed: 0 });
        }
        for _ in 0..100 {
            assert_eq!(budget.admit_at(start + Duration::from_secs(1)), Admit::Suppress);
        }
        assert_eq!(budget.admit_at(start + WINDOW), Admit::Log { suppressed: 100 });
        assert_eq!(budget.admit_at(start + WINDOW), Admit::Log { suppressed: 0 });
    }
}
