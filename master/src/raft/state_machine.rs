//! The replicated state machine: committed Raft entries applied to the
//! master's in-memory state, and snapshots that are the journal's
//! checkpoints (`journal::checkpoint`).
//!
//! The leader applies its own entries *before* it proposes them (that is
//! how operations validate against the state they change, exactly as a
//! single master does); when they come back committed they are skipped.
//! Anything else is applied here. Speculation is tied to an *epoch*: a
//! proposal carries the proposer's node id and epoch, and only a proposal
//! of this node in the current epoch is known to be in the state already.
//! When speculative entries may have been lost (leadership lost before they
//! committed), the state is rebuilt from the snapshot plus the committed
//! log and the epoch moves on, so the state always equals a prefix of the
//! committed log plus this epoch's own proposals.

use super::log_store::{Entry, LogId, LogStore};
use super::{JournalBatch, TypeConfig};
use crate::journal::checkpoint::{encode_frozen, freeze, FrozenState};
use crate::journal::{load_checkpoint, JournalError};
use crate::state::MasterState;
use alluxio_proto::journal::JournalEntryBatch;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use prost::Message;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;

pub type Membership = StoredMembership<u64, super::membership::MasterNode>;
pub(crate) type Meta = SnapshotMeta<u64, super::membership::MasterNode>;

fn sm_error(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_state_machine(AnyError::error(e)).into()
}

fn snapshot_error(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_snapshot(None, AnyError::error(e)).into()
}

/// How far the state machine has got.
#[derive(Clone, Debug, Default)]
struct Applied {
    log_id: Option<LogId>,
    membership: Membership,
    /// Journal sequence of the last applied (or skipped) journal entry.
    sequence: u64,
}

/// What the state machine, the master's write path and the leadership
/// watcher share.
pub struct Replica {
    pub node_id: u64,
    pub state: Arc<RwLock<MasterState>>,
    /// Changed only while `state`'s lock is held (read lock for skips,
    /// write lock otherwise), so a reader holding the state lock sees both
    /// consistent.
    applied: Mutex<Applied>,
    /// The current speculation epoch (see the module comment).
    epoch: AtomicU64,
    /// True while this node is the serving leader: only then may it
    /// speculate.
    serving: AtomicBool,
    /// Writers hold it (shared) while they apply and propose; taking it
    /// exclusively stops new speculation, for a snapshot.
    pub speculation_gate: tokio::sync::RwLock<()>,
    applied_sequence: watch::Sender<u64>,
    snapshot_dir: PathBuf,
    current_snapshot: Mutex<Option<Meta>>,
    snapshot_installs: AtomicU64,
    log: LogStore,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Replica {
    /// Loads the newest snapshot in `dir` into a fresh state.
    pub fn open(node_id: u64, dir: &Path, log: LogStore) -> Result<Replica, JournalError> {
        let mut state = MasterState::default();
        let mut applied = Applied::default();
        let current = newest_snapshot(dir)?;
        if let Some(meta) = &current {
            load_checkpoint(&snapshot_path(dir, meta), &mut state, log.journal_key())?;
            applied = Applied {
                log_id: meta.last_log_id,
                membership: meta.last_membership.clone(),
                sequence: state.last_sequence,
            };
        }
        let (applied_sequence, _) = watch::channel(applied.sequence);
        Ok(Replica {
            node_id,
            state: Arc::new(RwLock::new(state)),
            applied: Mutex::new(applied),
            epoch: AtomicU64::new(first_epoch()),
            serving: AtomicBool::new(false),
            speculation_gate: tokio::sync::RwLock::new(()),
            applied_sequence,
            snapshot_dir: dir.to_path_buf(),
            current_snapshot: Mutex::new(current),
            snapshot_installs: AtomicU64::new(0),
            log,
        })
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn applied_index(&self) -> u64 {
        lock(&self.applied).log_id.map(|l| l.index).unwrap_or(0)
    }

    pub fn applied_sequence(&self) -> u64 {
        *self.applied_sequence.borrow()
    }

    pub fn snapshot_index(&self) -> Option<u64> {
        lock(&self.current_snapshot)
            .as_ref()
            .and_then(|m| m.last_log_id.map(|l| l.index))
    }

    /// Snapshots installed from a leader since this process started.
    pub fn snapshot_installs(&self) -> u64 {
        self.snapshot_installs.load(Ordering::Relaxed)
    }

    pub fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Release);
    }

    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    /// Waits until every journal entry up to `sequence` is committed and
    /// applied, or `timeout` passes (false).
    pub async fn wait_applied(&self, sequence: u64, timeout: Duration) -> bool {
        // The common case, without a timer or a subscription.
        if *self.applied_sequence.borrow() >= sequence {
            return true;
        }
        let mut rx = self.applied_sequence.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s >= sequence))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Drops speculative entries that never committed: rebuilds the state
    /// from the snapshot and the applied log if it is ahead of it.
    pub fn discard_speculation(&self) -> Result<(), String> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let applied = lock(&self.applied).clone();
        if state.last_sequence > applied.sequence {
            self.rebuild(&mut state, &applied)?;
        }
        Ok(())
    }

    fn rebuild(&self, state: &mut MasterState, applied: &Applied) -> Result<(), String> {
        let started = std::time::Instant::now();
        let dropped = state.last_sequence - applied.sequence;
        let mut fresh = MasterState::default();
        let snapshot = lock(&self.current_snapshot).clone();
        let mut from = 0;
        if let Some(meta) = &snapshot {
            let key = self.log.journal_key();
            load_checkpoint(&snapshot_path(&self.snapshot_dir, meta), &mut fresh, key)
                .map_err(|e| e.to_string())?;
            from = meta.last_log_id.map(|l| l.index + 1).unwrap_or(0);
        }
        // Nothing to replay when the applied position is the snapshot's
        // (right after a restart from it): `from` is then past `to`, and
        // an inverted range would panic the state machine's task.
        let to = applied.log_id.map(|l| l.index).filter(|to| *to >= from);
        if let Some(to) = to {
            for entry in self.log.entries(from..=to) {
                if let EntryPayload::Normal(batch) = &entry.payload {
                    apply_batch(&mut fresh, batch)?;
                }
            }
        }
        if fresh.last_sequence != applied.sequence {
            return Err(format!(
                "rebuilt state ends at journal entry {} but {} were applied",
                fresh.last_sequence, applied.sequence
            ));
        }
        *state = fresh;
        self.epoch.fetch_add(1, Ordering::AcqRel);
        tracing::warn!(
            dropped_entries = dropped,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "discarded uncommitted changes of a lost leadership; state rebuilt from the committed log"
        );
        Ok(())
    }

    fn apply_entry(&self, entry: Entry) -> Result<(), String> {
        let log_id = entry.log_id;
        match entry.payload {
            EntryPayload::Blank => {
                let _state = self.state.read().unwrap_or_else(|p| p.into_inner());
                lock(&self.applied).log_id = Some(log_id);
            }
            EntryPayload::Membership(m) => {
                let _state = self.state.read().unwrap_or_else(|p| p.into_inner());
                let mut applied = lock(&self.applied);
                applied.membership = StoredMembership::new(Some(log_id), m);
                applied.log_id = Some(log_id);
            }
            EntryPayload::Normal(batch) => {
                // Decided under the write lock: a rebuild (which moves the
                // epoch on) also takes it, so "ours, already applied" cannot
                // change between the check and the skip.
                let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
                let mut applied = lock(&self.applied);
                if self.is_own_speculation(&batch) {
                    let last = batch.last_sequence;
                    if last > state.last_sequence {
                        return Err(format!(
                            "own entry {last} committed but the state ends at {}",
                            state.last_sequence
                        ));
                    }
                    applied.sequence = applied.sequence.max(last);
                } else {
                    if state.last_sequence > applied.sequence {
                        self.rebuild(&mut state, &applied)?;
                    }
                    apply_batch(&mut state, &batch)?;
                    applied.sequence = state.last_sequence;
                }
                applied.log_id = Some(log_id);
            }
        }
        let sequence = lock(&self.applied).sequence;
        self.applied_sequence.send_replace(sequence);
        Ok(())
    }

    fn is_own_speculation(&self, batch: &JournalBatch) -> bool {
        batch.proposer == self.node_id && batch.epoch == self.epoch()
    }
}

/// A starting epoch no earlier life of this process used: entries this
/// node proposed before a restart are not in the state it recovered, so
/// they must never pass for its own speculation.
fn first_epoch() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    // Room above for the bumps of a long life.
    (random >> 24) << 20 | 1
}

/// Applies a batch's journal entries in order, each exactly the next one.
pub fn apply_batch(state: &mut MasterState, batch: &JournalBatch) -> Result<(), String> {
    let decoded = JournalEntryBatch::decode(batch.entries.as_slice())
        .map_err(|e| format!("undecodable journal batch: {e}"))?;
    for entry in decoded.entries {
        if entry.sequence != state.last_sequence + 1 {
            return Err(format!(
                "journal entry {} follows {}: the replicated log has a gap",
                entry.sequence, state.last_sequence
            ));
        }
        state
            .apply(&entry)
            .map_err(|e| format!("journal entry {} does not apply: {e}", entry.sequence))?;
    }
    Ok(())
}

fn snapshot_path(dir: &Path, meta: &Meta) -> PathBuf {
    let index = meta.last_log_id.map(|l| l.index).unwrap_or(0);
    dir.join(format!("snapshot-{index:020}.ckpt"))
}

fn meta_path(dir: &Path, meta: &Meta) -> PathBuf {
    snapshot_path(dir, meta).with_extension("meta")
}

/// The newest snapshot whose data and metadata are both complete.
fn newest_snapshot(dir: &Path) -> Result<Option<Meta>, JournalError> {
    let mut metas = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))? {
        let path = entry.map_err(|e| JournalError::io(dir, e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("snapshot-") && name.ends_with(".meta") {
            metas.push(path);
        }
    }
    metas.sort();
    for path in metas.iter().rev() {
        let text = std::fs::read(path).map_err(|e| JournalError::io(path, e))?;
        let meta: Meta = serde_json::from_slice(&text).map_err(|e| JournalError::Corrupt {
            path: path.clone(),
            offset: 0,
            reason: format!("undecodable snapshot metadata: {e}"),
        })?;
        if snapshot_path(dir, &meta).exists() {
            return Ok(Some(meta));
        }
    }
    Ok(None)
}

/// Writes a snapshot durably (data, then metadata, each through a
/// temporary file) and deletes older ones.
pub(crate) fn store_snapshot(dir: &Path, meta: &Meta, data: &[u8]) -> std::io::Result<()> {
    let write = |path: &Path, bytes: &[u8]| -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        let mut f = alluxio_common::io::create_private(&tmp)?;
        alluxio_common::io::write_with_early_writeback(&mut f, bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write(&snapshot_path(dir, meta), data)?;
    let meta_json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
    write(&meta_path(dir, meta), &meta_json)?;
    std::fs::File::open(dir)?.sync_all()?;
    let keep = snapshot_path(dir, meta);
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let is_snapshot = name.starts_with("snapshot-");
        if is_snapshot && path.with_extension("ckpt") != keep {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}

/// Freezes the state at a moment it equals the applied log exactly (no
/// speculative entries in it), for a snapshot.
async fn freeze_at_applied(replica: &Replica) -> Result<(FrozenState, Applied), StorageError<u64>> {
    let _paused = replica.speculation_gate.write().await;
    loop {
        let target = replica
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .last_sequence;
        if !replica.wait_applied(target, Duration::from_secs(5)).await {
            if replica.is_serving() {
                tracing::warn!(target, "snapshot waits for uncommitted entries");
            } else {
                replica.discard_speculation().map_err(sm_error)?;
            }
            continue;
        }
        let mut state = replica.state.write().unwrap_or_else(|p| p.into_inner());
        let applied = lock(&replica.applied).clone();
        if state.last_sequence == applied.sequence {
            return Ok((freeze(&mut state), applied));
        }
    }
}

/// openraft's handle on the state machine.
pub struct StateMachine(pub Arc<Replica>);

pub struct SnapshotBuilder(Arc<Replica>);

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    /// Captures the state at exactly the applied log position. New
    /// speculation is paused until then, and in-flight speculation is
    /// waited for (on a follower there is none); the state is then frozen
    /// and encoded piece by piece as a single master's checkpoint is, so
    /// neither writes nor heartbeats wait for the encoding.
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let replica = &self.0;
        let (data, applied) = loop {
            let (frozen, applied) = freeze_at_applied(replica).await?;
            let r = replica.clone();
            let encoded = tokio::task::spawn_blocking(move || {
                encode_frozen(&r.state, frozen, r.log.journal_key())
            })
            .await
            .map_err(snapshot_error)?;
            match encoded {
                Ok(data) => break (data, applied),
                // The state was rebuilt meanwhile: take the picture again.
                Err(e) => tracing::info!("snapshot starts over: {e}"),
            }
        };
        let last = applied.log_id;
        let meta = Meta {
            last_log_id: last,
            last_membership: applied.membership,
            snapshot_id: format!(
                "{}-{}-{}",
                last.map(|l| l.leader_id.term).unwrap_or(0),
                last.map(|l| l.index).unwrap_or(0),
                alluxio_common::now_ms()
            ),
        };
        let (dir, m, bytes) = (replica.snapshot_dir.clone(), meta.clone(), data);
        let bytes =
            tokio::task::spawn_blocking(move || store_snapshot(&dir, &m, &bytes).map(|()| bytes))
                .await
                .map_err(snapshot_error)?
                .map_err(snapshot_error)?;
        tracing::info!(index = ?last.map(|l| l.index), bytes = bytes.len(), "Raft snapshot written");
        *lock(&replica.current_snapshot) = Some(meta.clone());
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError<u64>> {
        let applied = lock(&self.0.applied).clone();
        Ok((applied.log_id, applied.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut responses = Vec::new();
        for entry in entries {
            self.0.apply_entry(entry).map_err(sm_error)?;
            responses.push(());
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder(self.0.clone())
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    /// Replaces the state with a snapshot streamed from the leader.
    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let replica = self.0.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            let dir = &replica.snapshot_dir;
            store_snapshot(dir, &meta, snapshot.get_ref()).map_err(|e| e.to_string())?;
            let mut fresh = MasterState::default();
            let key = replica.log.journal_key();
            load_checkpoint(&snapshot_path(dir, &meta), &mut fresh, key)
                .map_err(|e| e.to_string())?;
            let mut state = replica.state.write().unwrap_or_else(|p| p.into_inner());
            let mut applied = lock(&replica.applied);
            *applied = Applied {
                log_id: meta.last_log_id,
                membership: meta.last_membership.clone(),
                sequence: fresh.last_sequence,
            };
            *state = fresh;
            replica.epoch.fetch_add(1, Ordering::AcqRel);
            replica.applied_sequence.send_replace(applied.sequence);
            *lock(&replica.current_snapshot) = Some(meta.clone());
            replica.snapshot_installs.fetch_add(1, Ordering::Relaxed);
            tracing::info!(index = ?meta.last_log_id.map(|l| l.index), "Raft snapshot installed");
            Ok(())
        })
        .await
        .map_err(snapshot_error)?
        .map_err(snapshot_error)
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        let Some(meta) = lock(&self.0.current_snapshot).clone() else {
            return Ok(None);
        };
        let path = snapshot_path(&self.0.snapshot_dir, &meta);
        let data = tokio::fs::read(&path).await.map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(None, AnyError::new(&e)))
        })?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
