//! Retrying with exponential backoff: the one place that knows the `backoff`
//! crate, so that it can be swapped for another without touching callers.

use std::time::Duration;

use backoff::ExponentialBackoffBuilder;

/// The share by which each delay is randomly lengthened or shortened, so
/// that replicas and hot-key writers that failed together do not retry in
/// lockstep.
const JITTER: f64 = 0.2;

/// How long to wait between attempts, and for how long to keep trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay after the first failure; each later delay doubles.
    pub first_delay: Duration,
    /// No single delay grows beyond this.
    pub max_delay: Duration,
    /// No new attempt starts once this much time has passed since the first.
    pub give_up_after: Duration,
}

/// Calls `attempt` until it succeeds, fails with an error that
/// `is_transient` rejects, or `policy` runs out of time. Before each wait,
/// `on_retry` is told the error and the delay ahead; the last error is
/// returned when retrying stops.
pub fn retry<T, E>(
    policy: &RetryPolicy,
    mut attempt: impl FnMut() -> Result<T, E>,
    is_transient: impl Fn(&E) -> bool,
    mut on_retry: impl FnMut(&E, Duration),
) -> Result<T, E> {
    let backoff = ExponentialBackoffBuilder::new()
        .with_initial_interval(policy.first_delay)
        .with_multiplier(2.0)
        .with_randomization_factor(JITTER)
        // Jitter is applied after the cap, so the cap leaves room for it.
        .with_max_interval(policy.max_delay.div_f64(1.0 + JITTER))
        .with_max_elapsed_time(Some(policy.give_up_after))
        .build();
    let classified = || {
        attempt().map_err(|error| {
            if is_transient(&error) {
                backoff::Error::transient(error)
            } else {
                backoff::Error::permanent(error)
            }
        })
    };
    backoff::retry_notify(backoff, classified, |error: E, delay| {
        on_retry(&error, delay)
    })
    .map_err(|error| match error {
        backoff::Error::Permanent(error) => error,
        backoff::Error::Transient { err, .. } => err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: RetryPolicy = RetryPolicy {
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        give_up_after: Duration::from_millis(200),
    };

    #[test]
    fn transient_errors_are_retried_until_success() {
        let mut attempts = 0;
        let mut delays = Vec::new();

        let outcome = retry(
            &QUICK,
            || {
                attempts += 1;
                if attempts < 4 {
                    Err("busy")
                } else {
                    Ok(attempts)
                }
            },
            |_| true,
            |_, delay| delays.push(delay),
        );

        assert_eq!(outcome, Ok(4));
        assert_eq!(delays.len(), 3);
        assert!(delays.iter().all(|delay| *delay <= QUICK.max_delay));
    }

    #[test]
    fn a_permanent_error_stops_at_once() {
        let mut attempts = 0;

        let outcome: Result<(), _> = retry(
            &QUICK,
            || {
                attempts += 1;
                Err("broken")
            },
            |_| false,
            |_, _| panic!("a permanent error must not be retried"),
        );

        assert_eq!(outcome, Err("broken"));
        assert_eq!(attempts, 1);
    }

    #[test]
    fn retrying_stops_when_time_runs_out() {
        let policy = RetryPolicy {
            give_up_after: Duration::from_millis(30),
            ..QUICK
        };
        let started = std::time::Instant::now();

        let outcome: Result<(), _> = retry(&policy, || Err("still busy"), |_| true, |_, _| {});

        assert_eq!(outcome, Err("still busy"));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
