//! Taking over a single master's journal: a master that ran alone becomes
//! the first member of a Raft group, with its namespace intact.
//!
//! Started in fault-tolerant mode with `master.embedded_journal.addresses`
//! naming only itself, a master whose journal directory holds a single
//! master's journal (`checkpoint-*`, `log-*`) recovers that state as a
//! single master would, writes it as the group's first snapshot (at log
//! index 0, with a membership of itself alone), and moves the old files
//! into `single-master.imported/`. It then leads a group of one; the other
//! masters join it (see `membership`). Only a group of one may take a
//! journal over: founders of a larger group initialise it independently,
//! and an empty founder must never lead a namespace another founder holds.

use super::membership::MasterNode;
use super::state_machine::{store_snapshot, Membership, Meta};
use super::Member;
use crate::journal::checkpoint::{encode_frozen, freeze};
use crate::journal::seal::JournalKey;
use crate::journal::{recover, JournalError};
use crate::state::MasterState;
use openraft::{CommittedLeaderId, LogId};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::RwLock;

/// Where the taken-over files go.
const IMPORTED_DIR: &str = "single-master.imported";

/// Whether `dir` holds a single master's journal files.
pub fn holds_single_master_journal(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.starts_with("log-") || name.starts_with("checkpoint-")
        })
    })
}

/// Turns the single master's journal in `dir` into the first snapshot of a
/// group whose only member is `me`.
pub fn take_over(dir: &Path, me: &Member, key: Option<&JournalKey>) -> Result<(), JournalError> {
    let mut state = MasterState::default();
    let report = recover(dir, &mut state, key)?;
    let sequence = state.last_sequence;
    let frozen = freeze(&mut state);
    let state = RwLock::new(state);
    let data = encode_frozen(&state, frozen, key)
        .map_err(|e| JournalError::Failed(format!("cannot encode the recovered state: {e}")))?;
    // The log id openraft gives a group's first membership.
    let log_id = LogId::new(CommittedLeaderId::new(0, 0), 0);
    let nodes = BTreeMap::from([(me.id, MasterNode::new(&me.raft_address, &me.rpc_address))]);
    let membership = openraft::Membership::new(vec![BTreeSet::from([me.id])], nodes);
    let meta = Meta {
        last_log_id: Some(log_id),
        last_membership: Membership::new(Some(log_id), membership),
        snapshot_id: format!("imported-{}", alluxio_common::now_ms()),
    };
    store_snapshot(dir, &meta, &data).map_err(|e| JournalError::io(dir, e))?;
    // Out of the way once the snapshot is durable (a crash before this
    // leaves them behind, unread: the snapshot is what counts).
    let imported = dir.join(IMPORTED_DIR);
    alluxio_common::io::create_private_dir(&imported)
        .map_err(|e| JournalError::io(&imported, e))?;
    for entry in std::fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))? {
        let path = entry.map_err(|e| JournalError::io(dir, e))?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if name.starts_with("log-") || name.starts_with("checkpoint-") {
            std::fs::rename(&path, imported.join(&name)).map_err(|e| JournalError::io(&path, e))?;
        }
    }
    alluxio_common::io::sync_dir(&imported).map_err(|e| JournalError::io(&imported, e))?;
    alluxio_common::io::sync_dir(dir).map_err(|e| JournalError::io(dir, e))?;
    tracing::warn!(
        dir = %dir.display(),
        sequence,
        replayed = report.replayed_entries,
        "took over a single master's journal as the first snapshot of a new Raft group; \
         its files are in {IMPORTED_DIR}/"
    );
    Ok(())
}
