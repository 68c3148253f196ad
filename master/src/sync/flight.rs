//! Directory syncs in flight: at most one UFS listing per directory runs
//! at a time, and whoever else needs that directory waits for it instead
//! of listing the same millions of objects again. Also the counters that
//! the metrics and `loadMetadata` progress read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Default)]
pub struct SyncsInFlight {
    running: Mutex<HashMap<u64, Running>>,
    /// UFS entries applied by directory syncs since the start.
    entries_applied: AtomicU64,
}

struct Running {
    done: watch::Receiver<bool>,
    entries: Arc<AtomicU64>,
}

/// Either the caller lists the directory (holding the guard), or waits
/// for the listing that runs.
pub enum Flight<'a> {
    Started(FlightGuard<'a>),
    Running(watch::Receiver<bool>),
}

/// Held by the one listing of a directory; dropping it (at the end, or
/// when the listing fails or its caller goes away) releases the waiters.
pub struct FlightGuard<'a> {
    syncs: &'a SyncsInFlight,
    dir_id: u64,
    done: watch::Sender<bool>,
    entries: Arc<AtomicU64>,
}

impl SyncsInFlight {
    pub fn join_or_start(&self, dir_id: u64) -> Flight<'_> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = running.get(&dir_id) {
            return Flight::Running(r.done.clone());
        }
        let (done, done_rx) = watch::channel(false);
        let entries = Arc::new(AtomicU64::new(0));
        running.insert(
            dir_id,
            Running {
                done: done_rx,
                entries: entries.clone(),
            },
        );
        Flight::Started(FlightGuard {
            syncs: self,
            dir_id,
            done,
            entries,
        })
    }

    /// Entries applied so far by the listing of `dir_id`, if one runs.
    pub fn progress(&self, dir_id: u64) -> Option<u64> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running
            .get(&dir_id)
            .map(|r| r.entries.load(Ordering::Relaxed))
    }

    /// Directory listings running now.
    pub fn in_progress(&self) -> usize {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn entries_applied(&self) -> u64 {
        self.entries_applied.load(Ordering::Relaxed)
    }

    pub(super) fn count_applied(&self, n: u64) {
        self.entries_applied.fetch_add(n, Ordering::Relaxed);
    }
}

impl FlightGuard<'_> {
    pub fn applied(&self, n: u64) {
        self.entries.fetch_add(n, Ordering::Relaxed);
    }

    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        self.syncs
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.dir_id);
        let _ = self.done.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_sync_of_a_directory_waits_for_the_first() {
        let syncs = SyncsInFlight::default();
        let Flight::Started(first) = syncs.join_or_start(7) else {
            panic!("nothing runs yet");
        };
        let Flight::Running(mut waiting) = syncs.join_or_start(7) else {
            panic!("the first one runs");
        };
        assert!(matches!(syncs.join_or_start(8), Flight::Started(_)));
        first.applied(1000);
        assert_eq!(syncs.progress(7), Some(1000));
        assert_eq!(syncs.in_progress(), 1);
        drop(first);
        waiting.wait_for(|done| *done).await.unwrap();
        assert_eq!(syncs.progress(7), None);
        assert!(matches!(syncs.join_or_start(7), Flight::Started(_)));
    }
}
