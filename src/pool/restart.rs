//! Restart policy of one pool slot: a pure state machine, driven by the caller's clock.
//!
//! Every unplanned end of a child (crash, protocol breach, timeout, failed start) is recorded
//! with the time it happened. More than `max_restarts` of them inside `restart_window`, or a
//! child that exits with the reserved "cannot start" code, puts the slot in backoff: the next
//! start waits an exponentially growing delay, capped at `backoff_max`. The exponent grows
//! only while failures keep coming inside the window, so a slot that stayed quiet for a whole
//! window starts again from the first delay. Planned replacements (recycling, cancel) are not
//! failures and are not recorded here.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// First backoff delay, unless `backoff_max` is smaller.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);

/// What ended a child, as far as restart intensity is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Crash, protocol breach, timeout, start timeout: a restart may help.
    Transient,
    /// The child exited with the reserved "cannot start" code: it will fail again right away.
    CannotStart,
}

/// What the slot does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RestartNow,
    BackOff(Duration),
}

#[derive(Debug, Clone)]
pub struct RestartPolicy {
    max_restarts: u32,
    window: Duration,
    backoff_max: Duration,
    /// Times of recent failures, oldest first, none older than `window`.
    recent: VecDeque<Instant>,
    /// Backoffs in a row; the next delay is BACKOFF_FIRST * 2^backoffs.
    backoffs: u32,
}

impl RestartPolicy {
    pub fn new(max_restarts: u32, window: Duration, backoff_max: Duration) -> RestartPolicy {
        RestartPolicy {
            max_restarts,
            window,
            backoff_max,
            recent: VecDeque::new(),
            backoffs: 0,
        }
    }

    /// New limits from a reload; the failure history is kept.
    pub fn reconfigure(&mut self, max_restarts: u32, window: Duration, backoff_max: Duration) {
        self.max_restarts = max_restarts;
        self.window = window;
        self.backoff_max = backoff_max;
    }

    /// Records a failure at `now` and decides how soon the next child may start.
    pub fn record_failure(&mut self, now: Instant, failure: Failure) -> Decision {
        self.forget_before(now);
        self.recent.push_back(now);
        let too_many = self.recent.len() > self.max_restarts as usize;
        if failure == Failure::CannotStart || too_many {
            let delay = self.delay(self.backoffs);
            self.backoffs = self.backoffs.saturating_add(1);
            Decision::BackOff(delay)
        } else {
            self.backoffs = 0;
            Decision::RestartNow
        }
    }

    /// Failures currently counted against the window.
    #[cfg(test)]
    pub fn recent_failures(&mut self, now: Instant) -> usize {
        self.forget_before(now);
        self.recent.len()
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some(&oldest) = self.recent.front() {
            if now.saturating_duration_since(oldest) > self.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.is_empty() {
            self.backoffs = 0;
        }
    }

    fn delay(&self, backoffs: u32) -> Duration {
        let first = BACKOFF_FIRST.min(self.backoff_max);
        let factor = 1u32.checked_shl(backoffs.min(31)).unwrap_or(u32::MAX);
        first.saturating_mul(factor).min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn restarts_at_once_until_the_intensity_is_passed() {
        let t0 = Instant::now();
        let mut policy = RestartPolicy::new(3, secs(60), secs(60));
        for i in 0..3 {
            assert_eq!(
                policy.record_failure(t0 + secs(i), Failure::Transient),
                Decision::RestartNow
            );
        }
        assert_eq!(
            policy.record_failure(t0 + secs(3), Failure::Transient),
            Decision::BackOff(secs(1))
        );
        assert_eq!(
            policy.record_failure(t0 + secs(5), Failure::Transient),
            Decision::BackOff(secs(2))
        );
        assert_eq!(
            policy.record_failure(t0 + secs(8), Failure::Transient),
            Decision::BackOff(secs(4))
        );
    }

    #[test]
    fn backoff_is_capped() {
        let t0 = Instant::now();
        let mut policy = RestartPolicy::new(0, secs(600), secs(5));
        let delays: Vec<Decision> = (0..6)
            .map(|i| policy.record_failure(t0 + secs(i), Failure::Transient))
            .collect();
        assert_eq!(
            delays,
            [1, 2, 4, 5, 5, 5].map(|s| Decision::BackOff(secs(s)))
        );
    }

    #[test]
    fn failures_outside_the_window_are_forgotten_and_the_exponent_resets() {
        let t0 = Instant::now();
        let mut policy = RestartPolicy::new(1, secs(10), secs(60));
        assert_eq!(
            policy.record_failure(t0, Failure::Transient),
            Decision::RestartNow
        );
        assert_eq!(
            policy.record_failure(t0 + secs(1), Failure::Transient),
            Decision::BackOff(secs(1))
        );
        assert_eq!(
            policy.record_failure(t0 + secs(3), Failure::Transient),
            Decision::BackOff(secs(2))
        );
        assert_eq!(policy.recent_failures(t0 + secs(12)), 1);
        // Quiet for a whole window: history and exponent are gone.
        assert_eq!(policy.recent_failures(t0 + secs(14)), 0);
        assert_eq!(
            policy.record_failure(t0 + secs(14), Failure::Transient),
            Decision::RestartNow
        );
        assert_eq!(
            policy.record_failure(t0 + secs(15), Failure::Transient),
            Decision::BackOff(secs(1))
        );
    }

    #[test]
    fn cannot_start_backs_off_at_once_and_grows() {
        let t0 = Instant::now();
        let mut policy = RestartPolicy::new(5, secs(60), Duration::from_millis(300));
        assert_eq!(
            policy.record_failure(t0, Failure::CannotStart),
            Decision::BackOff(Duration::from_millis(300))
        );
        let mut policy = RestartPolicy::new(5, secs(60), secs(60));
        assert_eq!(
            policy.record_failure(t0, Failure::CannotStart),
            Decision::BackOff(secs(1))
        );
        assert_eq!(
            policy.record_failure(t0 + secs(1), Failure::CannotStart),
            Decision::BackOff(secs(2))
        );
    }
}
