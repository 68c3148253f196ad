//! Whether a master's journal still takes writes, shared by the journal
//! (local or Raft log) that fails, the calls it must stop, `/readyz` and
//! the metrics.

use std::sync::Mutex;

/// Whether this master's journal still takes writes. A failed write or
/// fsync (a full disk, an I/O error) leaves memory ahead of the disk: from
/// then on the master answers no file-system, worker or job call (reads
/// would show changes a restart undoes), `/readyz` says why, and a restart
/// recovers what was acknowledged.
#[derive(Default)]
pub struct JournalHealth {
    failure: Mutex<Option<String>>,
}

impl JournalHealth {
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records the first failure (later ones add nothing).
    pub(crate) fn fail(&self, why: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        failure.get_or_insert(why);
    }
}
