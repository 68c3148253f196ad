//! Exponential backoff per object: how long a reconcile that keeps failing
//! waits before the next attempt. Entries go when the object reconciles
//! again, when it is deleted, and (for objects deleted while the operator
//! was not looking) once they are older than the longest backoff twice
//! over, so the map never outgrows the objects that exist.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// First retry after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Backoff {
    /// Consecutive failures per object key, and when the last one was.
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Backoff {
    /// Records one more failure of `key`; returns how long to wait.
    pub fn failed(&self, key: &str) -> Duration {
        self.failed_at(key, Instant::now())
    }

    fn failed_at(&self, key: &str, now: Instant) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.retain(|_, (_, last)| now.saturating_duration_since(*last) < 2 * MAX_BACKOFF);
        let (n, last) = failures.entry(key.to_string()).or_insert((0, now));
        let delay = FIRST_BACKOFF
            .saturating_mul(1 << (*n).min(16))
            .min(MAX_BACKOFF);
        *n += 1;
        *last = now;
        delay
    }

    /// Forgets `key`: it reconciled, or it is gone.
    pub fn forget(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Objects with failures on record.
    pub fn len(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum_and_resets() {
        let b = Backoff::default();
        let delays: Vec<u64> = (0..10).map(|_| b.failed("a").as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        b.forget("a");
        assert_eq!(b.failed("a").as_secs(), 2);
    }

    #[test]
    fn entries_of_objects_that_stopped_failing_are_dropped() {
        let b = Backoff::default();
        let start = Instant::now();
        b.failed_at("deleted", start);
        b.failed_at("still-failing", start);
        assert_eq!(b.len(), 2);
        // Long after: only what failed recently is kept.
        b.failed_at(
            "still-failing",
            start + 2 * MAX_BACKOFF + Duration::from_secs(1),
        );
        assert_eq!(b.len(), 1);
        b.forget("still-failing");
        assert!(b.is_empty());
    }
}
