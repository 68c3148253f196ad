//! Which journal a master writes: its own write-ahead log (a single
//! master) or the log its Raft group replicates (fault-tolerant mode). The
//! file-system operations see one interface: hand over applied entries in
//! order under the state's write lock, then wait for durability.

use crate::journal::{Journal, JournalCounters, JournalError, PendingFlush};
use crate::raft::ReplicatedJournal;
use alluxio_proto::journal::JournalEntry;
use std::path::Path;
use std::sync::{Arc, RwLock};

pub enum JournalBackend {
    Local(Journal),
    Replicated(Arc<ReplicatedJournal>),
}

impl JournalBackend {
    pub fn append(&self, entries: &[JournalEntry]) -> PendingFlush {
        match self {
            JournalBackend::Local(j) => j.append(entries),
            JournalBackend::Replicated(r) => r.append(entries),
        }
    }

    pub fn replicated(&self) -> Option<&Arc<ReplicatedJournal>> {
        match self {
            JournalBackend::Local(_) => None,
            JournalBackend::Replicated(r) => Some(r),
        }
    }

    /// Writes and fsyncs of the log (for Raft: of Raft entries, each a
    /// group of operations).
    pub fn counters(&self) -> &JournalCounters {
        match self {
            JournalBackend::Local(j) => &j.counters,
            JournalBackend::Replicated(r) => &r.counters,
        }
    }

    pub fn dir(&self) -> &Path {
        match self {
            JournalBackend::Local(j) => j.dir(),
            JournalBackend::Replicated(r) => &r.settings.dir,
        }
    }

    /// Sequence of the newest journal entry applied to this master's state.
    pub fn last_sequence(&self) -> u64 {
        match self {
            JournalBackend::Local(j) => j.last_sequence(),
            JournalBackend::Replicated(r) => r.replica.applied_sequence(),
        }
    }

    /// Local: journal entries since the checkpoint; Raft: Raft entries
    /// since the snapshot.
    pub fn entries_since_checkpoint(&self) -> u64 {
        match self {
            JournalBackend::Local(j) => j.entries_since_checkpoint(),
            JournalBackend::Replicated(r) => r
                .replica
                .applied_index()
                .saturating_sub(r.replica.snapshot_index().unwrap_or(0)),
        }
    }

    /// Local: the checkpoint's journal sequence; Raft: the snapshot's log
    /// index.
    pub fn checkpoint_sequence(&self) -> u64 {
        match self {
            JournalBackend::Local(j) => j.checkpoint_sequence(),
            JournalBackend::Replicated(r) => r.replica.snapshot_index().unwrap_or(0),
        }
    }

    pub fn checkpoint_time_ms(&self) -> i64 {
        match self {
            JournalBackend::Local(j) => j.checkpoint_time_ms(),
            JournalBackend::Replicated(_) => 0,
        }
    }

    /// Whether the periodic loop should write a checkpoint (Raft takes
    /// its snapshots itself, by `snapshot_period_entries`).
    pub fn checkpoint_due(&self) -> bool {
        match self {
            JournalBackend::Local(j) => j.checkpoint_due(),
            JournalBackend::Replicated(_) => false,
        }
    }

    /// Writes a checkpoint (local) or builds a Raft snapshot now.
    /// Blocking: call it from a blocking thread inside the runtime.
    pub fn checkpoint(
        &self,
        state: &RwLock<crate::state::MasterState>,
    ) -> Result<u64, JournalError> {
        match self {
            JournalBackend::Local(j) => j.checkpoint(state),
            JournalBackend::Replicated(r) => {
                let handle = tokio::runtime::Handle::current();
                handle
                    .block_on(r.raft.trigger().snapshot())
                    .map_err(|e| JournalError::Failed(format!("cannot trigger a snapshot: {e}")))?;
                Ok(r.replica.applied_index())
            }
        }
    }
}
