//! This master's own changes to the UFS while they are in flight. A mkdir,
//! the new parents of a file, a rename or a delete of persisted paths
//! changes the UFS first and commits to the namespace after. Two things
//! follow (`master/tests/model_concurrent.rs` caught both):
//!
//! - Namespace changes on related paths (the same path, one above or
//!   below the other) take turns, from their checks to their commit: a
//!   mkdir of `/a/b` racing a delete of `/a` would otherwise make `/a/b`
//!   (and `/a` again) in the UFS and then fail to commit, leaving
//!   directories that later appear from nowhere; a rename that has moved
//!   a directory in the UFS must not find its target taken by a file
//!   created meanwhile. Every create, delete and rename takes its turn,
//!   also those that change only the namespace (they are what the others
//!   must not meet half-way).
//! - A metadata sync that reads the UFS in between sees half an operation
//!   (a directory made but not committed, a renamed path gone from its old
//!   place) and would apply it as someone else's change. So a sync applies
//!   nothing it read at a path related to a change that was in flight or
//!   began after its read.

use alluxio_common::AlluxioPath;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Changes remembered after they end, for syncs that read before they
/// began; a sync older than all of them is told to read again.
const REMEMBERED: usize = 4096;

#[derive(Default)]
pub struct OwnUfsChanges {
    changes: Mutex<Changes>,
    /// Woken when a change ends, for operations waiting their turn.
    ended: tokio::sync::Notify,
}

#[derive(Default)]
struct Changes {
    /// Changes begun so far (the sequence of the next one).
    begun: u64,
    /// Changes in flight: sequence and paths (as many as calls at once).
    in_flight: Vec<(u64, Vec<AlluxioPath>)>,
    /// The last changes that ended, oldest first.
    ended: VecDeque<(u64, Vec<AlluxioPath>)>,
    /// Changes before this one are forgotten.
    forgotten_below: u64,
}

/// Held by an operation between its checks and its commit.
pub struct OwnUfsChange<'a> {
    owner: &'a OwnUfsChanges,
    sequence: u64,
}

fn related(a: &AlluxioPath, b: &AlluxioPath) -> bool {
    a.is_prefix_of(b) || b.is_prefix_of(a)
}

fn any_related(theirs: &[AlluxioPath], ours: &[AlluxioPath]) -> bool {
    theirs.iter().any(|t| ours.iter().any(|o| related(t, o)))
}

impl OwnUfsChanges {
    fn lock(&self) -> std::sync::MutexGuard<'_, Changes> {
        self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a change of `paths` until the guard drops, after waiting
    /// for the changes in flight on related paths to end. An operation
    /// takes all its paths in one call (never two guards at once), so the
    /// waits cannot form a cycle; each holder's UFS calls have their own
    /// timeouts, so the wait is bounded by theirs.
    pub async fn begin(&self, paths: Vec<AlluxioPath>) -> OwnUfsChange<'_> {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before looking, so an end in between wakes it.
            ended.as_mut().enable();
            if let Some(change) = self.try_begin(&paths) {
                return change;
            }
            ended.await;
        }
    }

    fn try_begin(&self, paths: &[AlluxioPath]) -> Option<OwnUfsChange<'_>> {
        let mut c = self.lock();
        if c.in_flight
            .iter()
            .any(|(_, theirs)| any_related(theirs, paths))
        {
            return None;
        }
        let sequence = c.begun;
        c.begun += 1;
        c.in_flight.push((sequence, paths.to_vec()));
        Some(OwnUfsChange {
            owner: self,
            sequence,
        })
    }

    /// Where a sync stands before it reads the UFS.
    pub fn read_point(&self) -> u64 {
        self.lock().begun
    }

    /// Whether a sync that read the UFS at `read_point` may apply what it
    /// read at `path`: no change of a related path is in flight, or began
    /// after the read.
    pub fn may_apply(&self, path: &AlluxioPath, read_point: u64) -> bool {
        let c = self.lock();
        if read_point < c.forgotten_below {
            // Changes it may have raced with are forgotten: read again.
            return false;
        }
        let ours = std::slice::from_ref(path);
        let in_flight = c
            .in_flight
            .iter()
            .any(|(_, theirs)| any_related(theirs, ours));
        let since_read = c
            .ended
            .iter()
            .rev()
            .take_while(|(sequence, _)| *sequence >= read_point)
            .any(|(_, theirs)| any_related(theirs, ours));
        !in_flight && !since_read
    }
}

impl Drop for OwnUfsChange<'_> {
    fn drop(&mut self) {
        {
            let mut c = self.owner.lock();
            if let Some(at) = c.in_flight.iter().position(|r| r.0 == self.sequence) {
                let change = c.in_flight.swap_remove(at);
                // Kept in order of beginning, for the scan back from the end.
                let at = c.ended.partition_point(|r| r.0 < change.0);
                c.ended.insert(at, change);
                while c.ended.len() > REMEMBERED {
                    if let Some((sequence, _)) = c.ended.pop_front() {
                        c.forgotten_below = c.forgotten_below.max(sequence + 1);
                    }
                }
            }
        }
        self.owner.ended.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AlluxioPath {
        AlluxioPath::new(s).unwrap()
    }

    #[tokio::test]
    async fn a_sync_leaves_alone_what_a_change_in_flight_or_after_its_read_touches() {
        let own = OwnUfsChanges::default();
        let before = own.read_point();
        let mkdir = own.begin(vec![p("/a")]).await;
        // In flight: the path, below it and above it are off limits.
        for path in ["/a", "/a/b", "/"] {
            assert!(!own.may_apply(&p(path), own.read_point()), "{path}");
        }
        assert!(own.may_apply(&p("/b"), own.read_point()));
        drop(mkdir);
        // Done: a sync that read before it began still may not apply /a.
        assert!(!own.may_apply(&p("/a"), before));
        assert!(own.may_apply(&p("/b"), before));
        // A sync that read after it ended may.
        assert!(own.may_apply(&p("/a"), own.read_point()));
    }

    #[tokio::test]
    async fn a_sync_older_than_what_is_remembered_reads_again() {
        let own = OwnUfsChanges::default();
        let old = own.read_point();
        for i in 0..REMEMBERED + 10 {
            drop(own.begin(vec![p(&format!("/x{i}"))]).await);
        }
        assert!(!own.may_apply(&p("/unrelated"), old));
        assert!(own.may_apply(&p("/unrelated"), own.read_point()));
    }

    #[tokio::test]
    async fn changes_of_related_paths_take_turns() {
        let own = std::sync::Arc::new(OwnUfsChanges::default());
        let delete = own.begin(vec![p("/a")]).await;
        // Unrelated: at once.
        drop(own.begin(vec![p("/b/c")]).await);
        let waiter = {
            let own = own.clone();
            tokio::spawn(async move {
                let _mkdir = own.begin(vec![p("/a/b")]).await;
            })
        };
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "a change below one in flight went ahead"
        );
        drop(delete);
        waiter.await.unwrap();
    }
}
