//! When to try a Graph call again: exponential backoff with jitter, `Retry-After` honoured,
//! attempts and total time capped, non-idempotent calls retried only when Graph certainly
//! did not act (429).

use std::time::Duration;

use crate::response::GraphError;

/// A retry policy. Callers (or `GraphClient`, feature `reqwest`) ask [`RetryPolicy::delay`] after
/// each failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. Default 5.
    pub max_attempts: u32,
    /// The first backoff. Default 500 ms.
    pub base_delay: Duration,
    /// The largest backoff. Default 30 s.
    pub max_delay: Duration,
    /// Give up rather than wait past this much time since the first attempt. Default 2 min.
    pub max_total: Duration,
    /// A `Retry-After` longer than this is not waited for. Default 5 min.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_total: Duration::from_secs(120),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// How long to wait before the next attempt, or `None` to give up.
    ///
    /// `attempts` is the number of attempts made so far (≥ 1), `elapsed` the time since
    /// the first began, `jitter` a random number in `[0, 1)`.
    pub fn delay(
        &self,
        error: &GraphError,
        idempotent: bool,
        attempts: u32,
        elapsed: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts || !error.is_transient() {
            return None;
        }
        if !idempotent && !error.not_processed() {
            return None;
        }
        let backoff = || {
            let exp = self
                .base_delay
                .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
                .min(self.max_delay);
            // "Equal jitter": half fixed, half random, so waits never collapse to zero.
            exp / 2 + exp.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
        };
        let wait = match error {
            GraphError::Throttled {
                retry_after: Some(after),
                ..
            } => {
                if *after > self.max_retry_after {
                    return None;
                }
                *after
            }
            _ => backoff(),
        };
        (elapsed.saturating_add(wait) <= self.max_total).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttled(after: Option<u64>) -> GraphError {
        GraphError::Throttled {
            status: 429,
            retry_after: after.map(Duration::from_secs),
        }
    }

    #[test]
    fn backoff_retry_after_caps_and_idempotency() {
        let p = RetryPolicy::default();
        let server = GraphError::Server {
            status: 500,
            code: None,
        };
        // Exponential with equal jitter: [exp/2, exp).
        let d1 = p.delay(&server, true, 1, Duration::ZERO, 0.0).unwrap();
        let d2 = p.delay(&server, true, 2, Duration::ZERO, 0.999).unwrap();
        let d3 = p.delay(&server, true, 3, Duration::ZERO, 0.5).unwrap();
        assert_eq!(d1, Duration::from_millis(250));
        assert!(d2 > Duration::from_millis(990) && d2 < Duration::from_millis(1000));
        assert_eq!(d3, Duration::from_millis(1500));
        // Capped by max_delay.
        assert!(
            p.delay(&server, true, 4, Duration::ZERO, 0.999).unwrap() <= Duration::from_secs(4)
        );
        let big = RetryPolicy {
            max_attempts: 50,
            ..p
        };
        assert!(
            big.delay(&server, true, 30, Duration::ZERO, 0.999).unwrap() <= Duration::from_secs(30)
        );
        // Retry-After wins over backoff, but not beyond max_retry_after.
        assert_eq!(
            p.delay(&throttled(Some(7)), true, 1, Duration::ZERO, 0.3),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            p.delay(&throttled(Some(301)), true, 1, Duration::ZERO, 0.3),
            None
        );
        // Attempts and total time.
        assert_eq!(p.delay(&server, true, 5, Duration::ZERO, 0.0), None);
        assert_eq!(
            p.delay(&throttled(Some(10)), true, 1, Duration::from_secs(115), 0.0),
            None
        );
        // Non-idempotent: only after a 429.
        assert!(
            p.delay(&throttled(Some(1)), false, 1, Duration::ZERO, 0.0)
                .is_some()
        );
        assert_eq!(p.delay(&server, false, 1, Duration::ZERO, 0.0), None);
        assert_eq!(
            p.delay(
                &GraphError::Transport("reset".into()),
                false,
                1,
                Duration::ZERO,
                0.0
            ),
            None
        );
        // Permanent errors never.
        assert_eq!(
            p.delay(
                &GraphError::NotFound {
                    code: None,
                    message: None
                },
                true,
                1,
                Duration::ZERO,
                0.0
            ),
            None
        );
        assert_eq!(
            RetryPolicy::none().delay(&server, true, 1, Duration::ZERO, 0.0),
            None
        );
    }
}
