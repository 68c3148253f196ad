//! The file-system master: every metadata operation, as validation against
//! the current state followed by journaled changes.
//!
//! Pattern of an operation: (1) bring the affected paths up to date with
//! the UFS (`sync.rs`, no lock held during UFS calls), (2) do any UFS side
//! effect (mkdir, delete, rename in the UFS), (3) under the state's write
//! lock, check again and apply journal entries through a [`Txn`], (4) after
//! the lock is released, wait until the journal has made them durable, and
//! only then answer the client.
//!
//! Operations live in submodules by theme: `create`, `change` (delete,
//! rename, attributes, free), `mounts`, `persist` (ASYNC_THROUGH); reads and
//! the shared machinery are here.

use crate::block_master::BlockMaster;
use crate::inode::{block_id, file_id_of_block, Inode, InodeKind, Persistence, ROOT_ID};
use crate::journal::{Journal, JournalHealth, PendingFlush};
use crate::mount_table::Resolved;
use crate::raft::ReplicatedJournal;
use crate::state::MasterState;
use alluxio_common::block_id::index_of_block;
use alluxio_common::{now_ms, AlluxioError, AlluxioPath, Result};
use alluxio_proto::grpc::{self, FileBlockInfo, FileInfo, MountPointInfo};
use alluxio_proto::journal::{self as j, journal_entry::Entry, JournalEntry};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

mod access;
mod change;
mod create;
mod journaling;
mod mounts;
mod persist;

pub use journaling::JournalBackend;
pub use mounts::mount_info;

/// Settings the file-system master takes from `alluxio.yaml`.
#[derive(Clone, Debug)]
pub struct FsSettings {
    pub default_block_size: u64,
    /// `master.allowed_local_ufs_roots`: where `file://` mounts may point.
    pub allowed_local_ufs_roots: Vec<String>,
    /// -1 never, 0 always, >0 milliseconds.
    pub default_sync_interval_ms: i64,
    /// UFS entries read and applied per transaction of a directory sync.
    pub sync_batch_size: usize,
    /// Inodes changed per transaction of a recursive setAttribute.
    pub change_batch_size: usize,
}

/// A write transaction: entries applied to the state as they are added and
/// remembered for the journal.
pub struct Txn<'a> {
    pub state: &'a mut MasterState,
    entries: Vec<JournalEntry>,
    removed: Vec<Inode>,
}

impl Txn<'_> {
    pub fn apply(&mut self, entry: Entry) -> Result<()> {
        let journal_entry = JournalEntry {
            sequence: self.state.last_sequence + 1,
            entry: Some(entry),
        };
        let removed = self
            .state
            .apply(&journal_entry)
            .map_err(|e| AlluxioError::Internal(format!("journal entry does not apply: {e}")))?;
        self.removed.extend(removed);
        self.entries.push(journal_entry);
        Ok(())
    }

    pub fn next_inode_id(&self) -> u64 {
        self.state.next_inode_id
    }
}

/// Owner, group and mode of a new inode.
#[derive(Clone, Debug)]
pub struct NewInodeAttrs {
    pub owner: String,
    pub group: String,
    pub mode: u32,
}

/// The mount option that keeps setuid and setgid bits of new modes.
pub const ALLOW_SETUID_OPTION: &str = "allow_setuid";

/// Setuid and setgid.
const SETID_BITS: u32 = 0o6000;

pub struct FileSystemMaster {
    pub(crate) state: Arc<RwLock<MasterState>>,
    pub(crate) journal: JournalBackend,
    pub(crate) blocks: Arc<BlockMaster>,
    pub(crate) settings: FsSettings,
    /// Inode id -> last time it was synced with the UFS (not journaled:
    /// after a restart everything is simply due again).
    pub(crate) sync_times: Mutex<HashMap<u64, i64>>,
    /// Directory listings running now (one per directory).
    pub(crate) syncs: crate::sync::SyncsInFlight,
    /// UFS changes of this master's own operations that are not yet
    /// committed: syncs leave them alone.
    pub(crate) own_ufs_changes: crate::sync::OwnUfsChanges,
    /// ASYNC_THROUGH files handed to a worker: file id -> (worker, when).
    persist_jobs: Mutex<HashMap<u64, (u64, std::time::Instant)>>,
    pub(crate) health: Arc<JournalHealth>,
}

/// A persist job not finished in this time is given to another worker.
const PERSIST_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(120);
/// Jobs handed to one worker per heartbeat.
const PERSIST_JOBS_PER_HEARTBEAT: usize = 4;

impl FileSystemMaster {
    pub fn new(
        state: MasterState,
        journal: Journal,
        blocks: Arc<BlockMaster>,
        settings: FsSettings,
    ) -> Self {
        Self::with_journal(
            Arc::new(RwLock::new(state)),
            JournalBackend::Local(journal),
            blocks,
            settings,
            Arc::default(),
        )
    }

    /// A master of a Raft group: its state is the replicated state
    /// machine's.
    pub fn replicated(
        journal: Arc<ReplicatedJournal>,
        blocks: Arc<BlockMaster>,
        settings: FsSettings,
    ) -> Self {
        let state = journal.replica.state.clone();
        let health = journal.health();
        Self::with_journal(
            state,
            JournalBackend::Replicated(journal),
            blocks,
            settings,
            health,
        )
    }

    fn with_journal(
        state: Arc<RwLock<MasterState>>,
        journal: JournalBackend,
        blocks: Arc<BlockMaster>,
        settings: FsSettings,
        health: Arc<JournalHealth>,
    ) -> Self {
        FileSystemMaster {
            state,
            journal,
            blocks,
            settings,
            sync_times: Mutex::new(HashMap::new()),
            syncs: Default::default(),
            own_ufs_changes: Default::default(),
            persist_jobs: Mutex::new(HashMap::new()),
            health,
        }
    }

    pub fn read_state(&self) -> RwLockReadGuard<'_, MasterState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn journal(&self) -> &JournalBackend {
        &self.journal
    }

    /// Whether this master does the leader's work: always for a single
    /// master; in a Raft group only while it is the serving leader.
    pub fn is_leader(&self) -> bool {
        self.journal.replicated().is_none_or(|r| r.is_serving())
    }

    /// Writes a checkpoint now (blocking; call from a blocking thread).
    pub fn checkpoint_now(&self) -> Result<u64, crate::journal::JournalError> {
        self.journal.checkpoint(&self.state)
    }

    pub fn block_master(&self) -> &Arc<BlockMaster> {
        &self.blocks
    }

    /// False once the journal failed: memory is ahead of disk and the
    /// master must be restarted.
    pub fn healthy(&self) -> bool {
        self.health.failure().is_none()
    }

    /// Shared with the RPC gate and `/readyz`.
    pub fn journal_health(&self) -> Arc<JournalHealth> {
        self.health.clone()
    }

    /// Runs `f` as one journaled transaction and waits for durability.
    /// Entries applied before an error inside `f` are still journaled, so
    /// memory and journal never disagree; operations validate before they
    /// apply anything, so refused requests change nothing.
    pub async fn commit<T>(&self, f: impl FnOnce(&mut Txn) -> Result<T>) -> Result<T> {
        if let Some(why) = self.health.failure() {
            return Err(AlluxioError::Unavailable(why));
        }
        // In a Raft group, only the serving leader applies changes, and
        // none while a snapshot is being taken (see `raft::state_machine`).
        let replicated = self.journal.replicated();
        let speculation = match replicated {
            Some(r) => {
                let gate = r.replica.speculation_gate.read().await;
                if !r.is_serving() {
                    return Err(AlluxioError::Unavailable(r.not_leader().0));
                }
                Some(gate)
            }
            None => None,
        };
        let (result, pending, removed): (Result<T>, PendingFlush, Vec<Inode>) = {
            let mut guard = self.state.write().unwrap_or_else(|p| p.into_inner());
            let mut txn = Txn {
                state: &mut guard,
                entries: Vec::new(),
                removed: Vec::new(),
            };
            let result = f(&mut txn);
            let pending = self.journal.append(&txn.entries);
            (result, pending, txn.removed)
        };
        drop(speculation);
        if let Err(e) = pending.wait().await {
            if replicated.is_some() {
                // Not committed (leadership lost): the state machine drops
                // the speculation; the client may retry with the leader.
                return Err(AlluxioError::Unavailable(format!(
                    "the change was not committed by the masters' quorum: {e}"
                )));
            }
            self.health.fail(format!(
                "the master's journal failed ({e}); it answers nothing until it is restarted (free space on the journal's disk first)"
            ));
            tracing::error!(error = %e, "journal failure: refusing every call until a restart");
            return Err(AlluxioError::Unavailable(format!(
                "cannot persist the change: {e}"
            )));
        }
        if !removed.is_empty() {
            let blocks: Vec<u64> = removed.iter().flat_map(Inode::block_ids).collect();
            self.blocks.forget_blocks(blocks);
            let mut times = self.sync_times.lock().unwrap_or_else(|p| p.into_inner());
            for inode in &removed {
                times.remove(&inode.id);
            }
        }
        result
    }

    /// The metadata sync interval of a request on `path`: the request's
    /// own, else the one the mount holding `path` sets (mount option
    /// `sync_interval`), else the master's default.
    pub(crate) fn sync_interval(
        &self,
        path: &str,
        common: Option<&grpc::FileSystemMasterCommonOptions>,
    ) -> i64 {
        if let Some(ms) = common.and_then(|c| c.sync_interval_ms) {
            return ms;
        }
        AlluxioPath::new(path)
            .ok()
            .and_then(|p| self.read_state().mounts.sync_interval_ms(&p))
            .unwrap_or(self.settings.default_sync_interval_ms)
    }

    /// Whether the block belongs to an existing file (workers' stale blocks
    /// are freed otherwise).
    /// `mode` as it may be stored at `path`: without setuid and setgid
    /// unless the mount holding `path` sets `allow_setuid=true`, so that a
    /// file planted through the cache never runs with its owner's rights
    /// on a client that mounts it.
    pub fn mode_allowed_at(&self, path: &AlluxioPath, mode: u32) -> u32 {
        let state = self.read_state();
        let allowed = state.mounts.resolve(path).is_some_and(|r| {
            r.mount.options.get(ALLOW_SETUID_OPTION).map(String::as_str) == Some("true")
        });
        if allowed {
            mode
        } else {
            mode & !SETID_BITS
        }
    }

    fn without_unallowed_setuid(&self, path: &AlluxioPath, attrs: NewInodeAttrs) -> NewInodeAttrs {
        NewInodeAttrs {
            mode: self.mode_allowed_at(path, attrs.mode),
            ..attrs
        }
    }

    pub fn is_valid_block(&self, block: u64) -> bool {
        let state = self.read_state();
        let index = alluxio_common::block_id::index_of_block(block);
        state
            .tree
            .get(file_id_of_block(block))
            .and_then(Inode::file)
            // Blocks of a file being written are valid before its length is known.
            .is_some_and(|f| !f.completed || index < f.block_count())
    }

    // ----- reading -----

    pub async fn get_status(&self, path: &AlluxioPath, sync_interval: i64) -> Result<FileInfo> {
        self.sync_path(path, sync_interval).await?;
        let state = self.read_state();
        let id = lookup(&state, path)?;
        Ok(self.file_info(&state, id))
    }

    /// Ids to list under `path` (the path itself when it is a file),
    /// loading directories from the UFS as the sync interval requires.
    pub async fn list_ids(
        &self,
        path: &AlluxioPath,
        recursive: bool,
        sync_interval: i64,
    ) -> Result<Vec<u64>> {
        self.sync_path(path, sync_interval).await?;
        self.list_ids_below(path, recursive, sync_interval).await
    }

    /// `list_ids` of a path already synced itself.
    pub async fn list_ids_below(
        &self,
        path: &AlluxioPath,
        recursive: bool,
        sync_interval: i64,
    ) -> Result<Vec<u64>> {
        let (id, is_dir) = {
            let state = self.read_state();
            let id = lookup(&state, path)?;
            (id, state.tree.get(id).is_some_and(Inode::is_dir))
        };
        if !is_dir {
            return Ok(vec![id]);
        }
        let mut out = Vec::new();
        let mut queue = std::collections::VecDeque::from([(id, path.clone())]);
        while let Some((dir_id, dir_path)) = queue.pop_front() {
            self.sync_children(&dir_path, sync_interval).await?;
            let state = self.read_state();
            let Some(dir) = state.tree.get(dir_id).and_then(Inode::dir) else {
                continue; // Removed meanwhile.
            };
            for (name, child) in &dir.children {
                out.push(*child);
                if recursive && state.tree.get(*child).is_some_and(Inode::is_dir) {
                    if let Ok(p) = dir_path.join(name) {
                        queue.push_back((*child, p));
                    }
                }
            }
        }
        Ok(out)
    }

    /// File infos of `ids` that still exist.
    pub fn file_infos(&self, ids: &[u64]) -> Vec<FileInfo> {
        let state = self.read_state();
        ids.iter()
            .filter(|id| state.tree.get(**id).is_some())
            .map(|id| self.file_info(&state, *id))
            .collect()
    }

    pub fn file_info(&self, state: &MasterState, id: u64) -> FileInfo {
        let Some(inode) = state.tree.get(id) else {
            return FileInfo::default();
        };
        let path = state.tree.path_of(id).unwrap_or_else(AlluxioPath::root);
        let resolved = state.mounts.resolve(&path);
        let mut info = FileInfo {
            file_id: id,
            name: inode.name.to_string(),
            path: path.to_string(),
            folder: inode.is_dir(),
            owner: inode.owner.to_string(),
            group: inode.group.to_string(),
            mode: inode.mode as u32,
            creation_time_ms: inode.creation_time_ms,
            last_modification_time_ms: inode.mtime_ms,
            persistence_state: match inode.persistence {
                Persistence::NotPersisted => grpc::PersistenceState::NotPersisted,
                Persistence::ToBePersisted => grpc::PersistenceState::ToBePersisted,
                Persistence::Persisted => grpc::PersistenceState::Persisted,
            } as i32,
            pinned: inode.pinned,
            ttl_ms: inode.ttl_ms,
            ttl_action: inode.ttl_action as i32,
            mount_point: inode.is_mount_point(),
            mount_id: resolved.as_ref().map(|r| r.mount.id).unwrap_or(0),
            ufs_path: resolved.as_ref().map(Resolved::ufs_uri).unwrap_or_default(),
            ..FileInfo::default()
        };
        if let InodeKind::File(f) = &inode.kind {
            info.length = f.length;
            info.block_size_bytes = f.block_size;
            info.completed = f.completed;
            info.ufs_mtime_ms = f.ufs_mtime_ms;
            let mut cached = 0u64;
            for index in 0..f.block_count() {
                let id = block_id(inode.id, index);
                let offset = index * f.block_size;
                let length = f.block_size.min(f.length - offset);
                let locations = self.blocks.locations(id);
                if !locations.is_empty() {
                    cached += length;
                }
                info.block_ids.push(id);
                info.file_block_infos.push(FileBlockInfo {
                    block_info: Some(grpc::BlockInfo {
                        block_id: id,
                        length,
                        locations,
                    }),
                    offset,
                });
            }
            info.in_alluxio_percentage = (cached * 100).checked_div(f.length).unwrap_or(100) as u32;
        }
        info
    }
}

impl FileSystemMaster {
    /// Where `block` lies: its file's block size, its offset and length,
    /// and its UFS source when the file is persisted (for workers, which
    /// trust no client with these).
    pub fn block_layout(&self, block: u64) -> Result<grpc::GetBlockLayoutResponse> {
        let (file_id, index) = (file_id_of_block(block), index_of_block(block));
        let state = self.read_state();
        let not_found = || AlluxioError::NotFound(format!("Block {block} belongs to no file"));
        let inode = state.tree.get(file_id).ok_or_else(not_found)?;
        let InodeKind::File(f) = &inode.kind else {
            return Err(not_found());
        };
        let offset = index.checked_mul(f.block_size).ok_or_else(not_found)?;
        if f.completed && index >= f.block_count() {
            return Err(not_found());
        }
        let block_length = if f.completed {
            f.block_size.min(f.length - offset)
        } else {
            f.block_size
        };
        let info = self.file_info(&state, file_id);
        let persisted = inode.persistence == Persistence::Persisted && f.completed;
        Ok(grpc::GetBlockLayoutResponse {
            file_id,
            block_size: f.block_size,
            offset_in_file: offset,
            block_length,
            completed: f.completed,
            ufs: persisted.then_some(grpc::UfsBlockSource {
                mount_id: info.mount_id,
                ufs_path: info.ufs_path,
                offset_in_file: offset,
            }),
        })
    }
}

pub(crate) fn lookup(state: &MasterState, path: &AlluxioPath) -> Result<u64> {
    state
        .tree
        .lookup(path)
        .ok_or_else(|| AlluxioError::NotFound(format!("Path {path} does not exist")))
}

pub(crate) fn resolve_mount(state: &MasterState, path: &AlluxioPath) -> Result<Resolved> {
    state.mounts.resolve(path).ok_or_else(|| {
        AlluxioError::Internal(format!(
            "no mount covers {path} (the root mount is missing)"
        ))
    })
}

pub(crate) fn ufs_of(resolved: &Resolved) -> Result<Arc<dyn alluxio_ufs::UnderFileSystem>> {
    resolved.mount.ufs.clone().map_err(|e| {
        AlluxioError::Unavailable(format!(
            "UFS of mount {} ({}) is unusable: {e}",
            resolved.mount.alluxio_path, resolved.mount.ufs_uri
        ))
    })
}

fn check_writable(resolved: &Resolved, path: &AlluxioPath) -> Result<()> {
    if resolved.mount.read_only {
        return Err(AlluxioError::PermissionDenied(format!(
            "Cannot modify {path}: it is under the read-only mount {}",
            resolved.mount.alluxio_path
        )));
    }
    Ok(())
}

/// No root yet: a new leader of a new namespace serves a moment before it
/// has created it. Retryable, as any other moment a leader is not ready.
pub(crate) fn no_root() -> AlluxioError {
    AlluxioError::Unavailable("the namespace's root is not created yet; retry".to_string())
}

/// The directory inode of a mount point (the root is one too): persisted
/// (it exists in its UFS), children not yet loaded.
pub(crate) fn mount_point_entry(id: u64, parent_id: u64, name: &str) -> Entry {
    let now = now_ms();
    Entry::InodeDirectory(j::InodeDirectoryEntry {
        id,
        parent_id,
        name: name.to_string(),
        owner: String::new(),
        group: String::new(),
        mode: 0o755,
        creation_time_ms: now,
        last_modification_time_ms: now,
        persistence_state: Persistence::Persisted as u32,
        pinned: false,
        ttl_ms: -1,
        ttl_action: 0,
        mount_point: true,
        direct_children_loaded: false,
    })
}

/// The root inode and root mount, journaled on a master's first start.
pub fn bootstrap_root(
    txn: &mut Txn,
    root_ufs: &str,
    options: &BTreeMap<String, String>,
) -> Result<()> {
    if txn.state.tree.root().is_none() {
        txn.apply(mount_point_entry(ROOT_ID, 0, ""))?;
    }
    if txn.state.mounts.get(&AlluxioPath::root()).is_none() {
        let mount_id = txn.state.next_mount_id;
        txn.apply(Entry::AddMountPoint(j::AddMountPointEntry {
            mount_id,
            alluxio_path: "/".to_string(),
            ufs_uri: root_ufs.to_string(),
            read_only: false,
            shared: false,
            options: options.clone().into_iter().collect(),
        }))?;
    }
    Ok(())
}
