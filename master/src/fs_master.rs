//! The file-system master: every metadata operation, as validation against
//! the current state followed by journaled changes.
//!
//! Pattern of an operation: (1) bring the affected paths up to date with
//! the UFS (`sync.rs`, no lock held during UFS calls), (2) do any UFS side
//! effect (mkdir, delete, rename in the UFS), (3) under the state's write
//! lock, check again and apply journal entries through a [`Txn`], (4) after
//! the lock is released, wait until the journal has made them durable, and
//! only then answer the client.

use crate::block_master::BlockMaster;
use crate::inode::{block_id, file_id_of_block, Inode, InodeKind, Persistence, ROOT_ID};
use crate::journal::{Journal, PendingFlush};
use crate::mount_table::Resolved;
use crate::state::MasterState;
use alluxio_common::{now_ms, AlluxioError, AlluxioPath, Result};
use alluxio_proto::grpc::{self, FileBlockInfo, FileInfo, MountPointInfo};
use alluxio_proto::journal::{self as j, journal_entry::Entry, JournalEntry};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

/// Settings the file-system master takes from `alluxio.yaml`.
#[derive(Clone, Debug)]
pub struct FsSettings {
    pub default_block_size: u64,
    /// -1 never, 0 always, >0 milliseconds.
    pub default_sync_interval_ms: i64,
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

pub struct FileSystemMaster {
    pub(crate) state: RwLock<MasterState>,
    pub(crate) journal: Journal,
    pub(crate) blocks: Arc<BlockMaster>,
    pub(crate) settings: FsSettings,
    /// Inode id -> last time it was synced with the UFS (not journaled:
    /// after a restart everything is simply due again).
    pub(crate) sync_times: Mutex<HashMap<u64, i64>>,
    /// ASYNC_THROUGH files handed to a worker: file id -> (worker, when).
    persist_jobs: Mutex<HashMap<u64, (u64, std::time::Instant)>>,
    failed: AtomicBool,
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
        FileSystemMaster {
            state: RwLock::new(state),
            journal,
            blocks,
            settings,
            sync_times: Mutex::new(HashMap::new()),
            persist_jobs: Mutex::new(HashMap::new()),
            failed: AtomicBool::new(false),
        }
    }

    pub fn read_state(&self) -> RwLockReadGuard<'_, MasterState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
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
        !self.failed.load(Ordering::Acquire)
    }

    /// Runs `f` as one journaled transaction and waits for durability.
    /// Entries applied before an error inside `f` are still journaled, so
    /// memory and journal never disagree; operations validate before they
    /// apply anything, so refused requests change nothing.
    pub async fn commit<T>(&self, f: impl FnOnce(&mut Txn) -> Result<T>) -> Result<T> {
        if !self.healthy() {
            return Err(AlluxioError::Unavailable(
                "the master's journal failed; restart the master".to_string(),
            ));
        }
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
        if let Err(e) = pending.wait().await {
            self.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, "journal failure: refusing further changes");
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

    pub(crate) fn sync_interval(
        &self,
        common: Option<&grpc::FileSystemMasterCommonOptions>,
    ) -> i64 {
        common
            .and_then(|c| c.sync_interval_ms)
            .unwrap_or(self.settings.default_sync_interval_ms)
    }

    /// Whether the block belongs to an existing file (workers' stale blocks
    /// are freed otherwise).
    pub fn is_valid_block(&self, block: u64) -> bool {
        let state = self.read_state();
        let index = block & ((1 << crate::inode::BLOCK_INDEX_BITS) - 1);
        state
            .tree
            .get(file_id_of_block(block))
            .and_then(Inode::file)
            // Blocks of a file being written are valid before its length is known.
            .is_some_and(|f| !f.completed || index < f.block_count())
    }

    // ----- asynchronous persistence -----

    /// ASYNC_THROUGH files for `worker` to write to the UFS: those whose
    /// first block it holds (or that have no cached block at all), not
    /// already given to another worker recently.
    pub fn persist_jobs_for(&self, worker: u64) -> Vec<grpc::PersistFile> {
        let candidates: Vec<(u64, Vec<u64>)> = {
            let state = self.read_state();
            state
                .to_persist
                .iter()
                .filter_map(|id| state.tree.get(*id).map(|i| (*id, i.block_ids())))
                .collect()
        };
        let mut jobs = self.persist_jobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (file_id, blocks) in candidates {
            if out.len() >= PERSIST_JOBS_PER_HEARTBEAT {
                break;
            }
            if jobs
                .get(&file_id)
                .is_some_and(|(_, at)| at.elapsed() < PERSIST_RETRY_AFTER)
            {
                continue;
            }
            let here = blocks.first().is_none_or(|b| {
                let holders = self.blocks.locations(*b);
                holders.is_empty() || holders.iter().any(|l| l.worker_id == worker)
            });
            if !here {
                continue;
            }
            let path = {
                let state = self.read_state();
                state.tree.path_of(file_id)
            };
            if let Some(path) = path {
                jobs.insert(file_id, (worker, std::time::Instant::now()));
                out.push(grpc::PersistFile {
                    file_id,
                    path: path.to_string(),
                });
            }
        }
        out
    }

    /// A worker finished writing an ASYNC_THROUGH file to the UFS.
    pub async fn commit_persisted(&self, file_id: u64, ufs_mtime_ms: i64) -> Result<()> {
        self.persist_jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&file_id);
        self.commit(|txn| {
            let inode = txn.state.tree.get(file_id).ok_or_else(|| {
                AlluxioError::NotFound(format!("File {file_id} no longer exists"))
            })?;
            if inode.persistence != Persistence::ToBePersisted {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "File {file_id} is not waiting to be persisted"
                )));
            }
            txn.apply(Entry::SetAttribute(j::SetAttributeEntry {
                id: file_id,
                persistence_state: Some(Persistence::Persisted as u32),
                ufs_mtime_ms: Some(ufs_mtime_ms),
                ..Default::default()
            }))
        })
        .await
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

    // ----- creating -----

    pub async fn create_directory(
        &self,
        path: &AlluxioPath,
        recursive: bool,
        allow_exists: bool,
        persist: bool,
        attrs: NewInodeAttrs,
        sync_interval: i64,
    ) -> Result<FileInfo> {
        self.sync_path(path, sync_interval).await?;
        if let Some(parent) = path.parent() {
            self.sync_path(&parent, sync_interval).await?;
        }
        let (missing, resolved) = self.plan_create(path, recursive, allow_exists)?;
        if missing.is_empty() {
            let state = self.read_state();
            return Ok(self.file_info(&state, lookup(&state, path)?));
        }
        if persist {
            let ufs = ufs_of(&resolved)?;
            ufs.mkdirs(&resolved.ufs_relative)
                .await
                .map_err(AlluxioError::from)?;
        }
        let id = self
            .commit(|txn| {
                let parent = self.recheck_parent(txn.state, path, &missing)?;
                self.create_dirs(txn, parent, &missing, persist, &attrs, true)
            })
            .await?;
        let state = self.read_state();
        Ok(self.file_info(&state, id))
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_file(
        &self,
        path: &AlluxioPath,
        recursive: bool,
        block_size: u64,
        write_type: grpc::WriteType,
        ttl_ms: i64,
        ttl_action: i32,
        attrs: NewInodeAttrs,
        sync_interval: i64,
    ) -> Result<FileInfo> {
        if path.is_root() {
            return Err(AlluxioError::AlreadyExists(
                "Path / already exists".to_string(),
            ));
        }
        self.sync_path(path, sync_interval).await?;
        if let Some(parent) = path.parent() {
            self.sync_path(&parent, sync_interval).await?;
        }
        let (missing, resolved) = self.plan_create(path, recursive, false)?;
        let persist_dirs = write_type != grpc::WriteType::MustCache;
        let new_parents = &missing[..missing.len() - 1];
        if persist_dirs && !new_parents.is_empty() {
            let ufs = ufs_of(&resolved)?;
            let parent_rel = resolved
                .ufs_relative
                .rsplit_once('/')
                .map(|(p, _)| p)
                .unwrap_or("");
            ufs.mkdirs(parent_rel).await.map_err(AlluxioError::from)?;
        }
        let block_size = if block_size == 0 {
            self.settings.default_block_size
        } else {
            block_size
        };
        let persistence = if write_type == grpc::WriteType::AsyncThrough {
            Persistence::ToBePersisted
        } else {
            Persistence::NotPersisted
        };
        let id = self
            .commit(|txn| {
                let parent = self.recheck_parent(txn.state, path, &missing)?;
                let parent =
                    self.create_dirs(txn, parent, new_parents, persist_dirs, &attrs, true)?;
                let id = txn.next_inode_id();
                let now = now_ms();
                txn.apply(Entry::InodeFile(j::InodeFileEntry {
                    id,
                    parent_id: parent,
                    name: path.name().to_string(),
                    owner: attrs.owner.clone(),
                    group: attrs.group.clone(),
                    mode: attrs.mode,
                    creation_time_ms: now,
                    last_modification_time_ms: now,
                    persistence_state: persistence as u32,
                    pinned: false,
                    ttl_ms,
                    ttl_action: ttl_action as u32,
                    block_size_bytes: block_size,
                    length: 0,
                    completed: false,
                    ufs_mtime_ms: 0,
                }))?;
                Ok(id)
            })
            .await?;
        let state = self.read_state();
        Ok(self.file_info(&state, id))
    }

    pub async fn complete_file(
        &self,
        path: &AlluxioPath,
        length: u64,
        persisted: bool,
        ufs_mtime_ms: i64,
    ) -> Result<FileInfo> {
        let id = self
            .commit(|txn| {
                let id = lookup(txn.state, path)?;
                let inode = txn.state.tree.get(id).expect("looked up");
                let file = inode.file().ok_or_else(|| {
                    AlluxioError::InvalidArgument(format!("Path {path} is a directory"))
                })?;
                if file.completed {
                    return Err(AlluxioError::FailedPrecondition(format!(
                        "File {path} is already completed"
                    )));
                }
                if file.block_size > 0
                    && length.div_ceil(file.block_size) >= 1 << crate::inode::BLOCK_INDEX_BITS
                {
                    return Err(AlluxioError::InvalidArgument(format!(
                        "File {path}: length {length} needs more than 2^24 blocks"
                    )));
                }
                let persistence = if persisted {
                    Persistence::Persisted
                } else {
                    inode.persistence
                };
                txn.apply(Entry::CompleteFile(j::CompleteFileEntry {
                    id,
                    length,
                    last_modification_time_ms: now_ms(),
                    persistence_state: persistence as u32,
                    ufs_mtime_ms,
                }))?;
                Ok(id)
            })
            .await?;
        let state = self.read_state();
        Ok(self.file_info(&state, id))
    }

    /// Checks a create of `path` and returns the names of the components
    /// to create (the last one is `path` itself) and `path`'s mount.
    fn plan_create(
        &self,
        path: &AlluxioPath,
        recursive: bool,
        allow_exists: bool,
    ) -> Result<(Vec<String>, Resolved)> {
        let state = self.read_state();
        let ids = state.tree.resolve_prefix(path);
        let resolved = resolve_mount(&state, path)?;
        if ids.len() == path.depth() + 1 {
            if allow_exists
                && state
                    .tree
                    .get(*ids.last().expect("non-empty"))
                    .is_some_and(Inode::is_dir)
            {
                return Ok((Vec::new(), resolved));
            }
            return Err(AlluxioError::AlreadyExists(format!(
                "Path {path} already exists"
            )));
        }
        let deepest = state
            .tree
            .get(*ids.last().ok_or_else(no_root)?)
            .ok_or_else(no_root)?;
        if !deepest.is_dir() {
            let p = state
                .tree
                .path_of(deepest.id)
                .unwrap_or_else(AlluxioPath::root);
            return Err(AlluxioError::FailedPrecondition(format!(
                "Cannot create {path}: {p} is a file, not a directory"
            )));
        }
        let missing: Vec<String> = path
            .components()
            .skip(ids.len() - 1)
            .map(str::to_string)
            .collect();
        if missing.len() > 1 && !recursive {
            let parent = path.parent().unwrap_or_else(AlluxioPath::root);
            return Err(AlluxioError::NotFound(format!(
                "Cannot create {path}: parent {parent} does not exist (use recursive)"
            )));
        }
        check_writable(&resolved, path)?;
        Ok((missing, resolved))
    }

    /// Under the write lock: the parent of the first missing component,
    /// after checking nobody created it meanwhile.
    fn recheck_parent(
        &self,
        state: &MasterState,
        path: &AlluxioPath,
        missing: &[String],
    ) -> Result<u64> {
        let ids = state.tree.resolve_prefix(path);
        if ids.len() + missing.len() != path.depth() + 1 {
            return Err(AlluxioError::AlreadyExists(format!(
                "Path {path} was created concurrently"
            )));
        }
        ids.last().copied().ok_or_else(no_root)
    }

    /// Creates directories `names` one below the other under `parent`;
    /// returns the id of the last one (or `parent` if `names` is empty).
    fn create_dirs(
        &self,
        txn: &mut Txn,
        mut parent: u64,
        names: &[String],
        persist: bool,
        attrs: &NewInodeAttrs,
        children_loaded: bool,
    ) -> Result<u64> {
        let now = now_ms();
        for name in names {
            let id = txn.next_inode_id();
            txn.apply(Entry::InodeDirectory(j::InodeDirectoryEntry {
                id,
                parent_id: parent,
                name: name.clone(),
                owner: attrs.owner.clone(),
                group: attrs.group.clone(),
                mode: attrs.mode,
                creation_time_ms: now,
                last_modification_time_ms: now,
                persistence_state: if persist {
                    Persistence::Persisted
                } else {
                    Persistence::NotPersisted
                } as u32,
                pinned: false,
                ttl_ms: -1,
                ttl_action: 0,
                mount_point: false,
                // New directories have nothing in the UFS to load.
                direct_children_loaded: children_loaded,
            }))?;
            parent = id;
        }
        Ok(parent)
    }

    // ----- changing -----

    pub async fn delete(
        &self,
        path: &AlluxioPath,
        recursive: bool,
        alluxio_only: bool,
        sync_interval: i64,
    ) -> Result<()> {
        if path.is_root() {
            return Err(AlluxioError::InvalidArgument(
                "Cannot delete the root directory".to_string(),
            ));
        }
        self.sync_path(path, sync_interval).await?;
        let (is_dir, persisted, resolved) = {
            let state = self.read_state();
            let id = lookup(&state, path)?;
            let inode = state.tree.get(id).expect("looked up");
            if inode.is_mount_point() {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "{path} is a mount point; unmount it instead of deleting it"
                )));
            }
            if let Some(m) = state.mounts.mounts_below(path).first() {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "Cannot delete {path}: it contains the mount point {}; unmount it first",
                    m.alluxio_path
                )));
            }
            (
                inode.is_dir(),
                inode.persistence == Persistence::Persisted,
                resolve_mount(&state, path)?,
            )
        };
        if is_dir && !recursive {
            self.sync_children(path, sync_interval).await?;
            let state = self.read_state();
            let id = lookup(&state, path)?;
            if state
                .tree
                .get(id)
                .and_then(Inode::dir)
                .is_some_and(|d| !d.children.is_empty())
            {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "Cannot delete non-empty directory {path} without recursive"
                )));
            }
        }
        if !alluxio_only {
            check_writable(&resolved, path)?;
            if persisted {
                let ufs = ufs_of(&resolved)?;
                let result = if is_dir {
                    ufs.delete_directory(&resolved.ufs_relative, true).await
                } else {
                    ufs.delete_file(&resolved.ufs_relative).await
                };
                match result {
                    Ok(()) | Err(alluxio_ufs::UfsError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.commit(|txn| {
            let id = lookup(txn.state, path)?;
            txn.apply(Entry::DeleteInode(j::DeleteInodeEntry {
                id,
                op_time_ms: now_ms(),
            }))
        })
        .await
    }

    pub async fn rename(
        &self,
        src: &AlluxioPath,
        dst: &AlluxioPath,
        sync_interval: i64,
    ) -> Result<()> {
        if src.is_root() || dst.is_root() {
            return Err(AlluxioError::InvalidArgument(
                "Cannot rename the root directory".to_string(),
            ));
        }
        if src.is_prefix_of(dst) {
            return Err(AlluxioError::InvalidArgument(format!(
                "Cannot rename {src} to {dst}: a directory cannot be moved into itself"
            )));
        }
        self.sync_path(src, sync_interval).await?;
        self.sync_path(dst, sync_interval).await?;
        let dst_parent = dst.parent().unwrap_or_else(AlluxioPath::root);
        self.sync_path(&dst_parent, sync_interval).await?;
        let (persisted, src_res, dst_res) = {
            let state = self.read_state();
            let id = lookup(&state, src)?;
            let inode = state.tree.get(id).expect("looked up");
            if inode.is_mount_point() || !state.mounts.mounts_below(src).is_empty() {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "Cannot rename {src}: it is or contains a mount point"
                )));
            }
            if state.tree.lookup(dst).is_some() {
                return Err(AlluxioError::AlreadyExists(format!(
                    "Cannot rename {src} to {dst}: {dst} already exists"
                )));
            }
            let parent = state.tree.lookup(&dst_parent).ok_or_else(|| {
                AlluxioError::NotFound(format!(
                    "Cannot rename {src} to {dst}: {dst_parent} does not exist"
                ))
            })?;
            if !state.tree.get(parent).is_some_and(Inode::is_dir) {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "Cannot rename {src} to {dst}: {dst_parent} is not a directory"
                )));
            }
            let src_res = resolve_mount(&state, src)?;
            let dst_res = resolve_mount(&state, dst)?;
            if src_res.mount.id != dst_res.mount.id {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "Cannot rename {src} to {dst}: they are in different mounts ({} and {})",
                    src_res.mount.alluxio_path, dst_res.mount.alluxio_path
                )));
            }
            check_writable(&src_res, src)?;
            (
                inode.persistence == Persistence::Persisted,
                src_res,
                dst_res,
            )
        };
        if persisted {
            let ufs = ufs_of(&src_res)?;
            ufs.rename(&src_res.ufs_relative, &dst_res.ufs_relative)
                .await
                .map_err(AlluxioError::from)?;
        }
        self.commit(|txn| {
            let id = lookup(txn.state, src)?;
            let parent = lookup(txn.state, &dst_parent)?;
            if txn.state.tree.lookup(dst).is_some() {
                return Err(AlluxioError::AlreadyExists(format!("{dst} already exists")));
            }
            txn.apply(Entry::Rename(j::RenameEntry {
                id,
                new_parent_id: parent,
                new_name: dst.name().to_string(),
                op_time_ms: now_ms(),
            }))
        })
        .await
    }

    pub async fn set_attribute(
        &self,
        req: &grpc::SetAttributeRequest,
        sync_interval: i64,
    ) -> Result<()> {
        let path = AlluxioPath::new(&req.path)?;
        if let Some(mode) = req.mode {
            if mode > 0o7777 {
                return Err(AlluxioError::InvalidArgument(format!(
                    "Invalid mode {mode:o}"
                )));
            }
        }
        for name in [&req.owner, &req.group].into_iter().flatten() {
            if name.is_empty() || name.contains(['\0', '\n', ':', '/']) {
                return Err(AlluxioError::InvalidArgument(format!(
                    "Invalid owner or group name {name:?}"
                )));
            }
        }
        if let Some(ttl) = req.ttl_ms {
            if ttl < -1 {
                return Err(AlluxioError::InvalidArgument(format!(
                    "Invalid TTL {ttl}: use -1 to remove it"
                )));
            }
        }
        self.sync_path(&path, sync_interval).await?;
        self.commit(|txn| {
            let id = lookup(txn.state, &path)?;
            let ids = if req.recursive {
                txn.state.tree.subtree_ids(id)
            } else {
                vec![id]
            };
            for id in ids {
                txn.apply(Entry::SetAttribute(j::SetAttributeEntry {
                    id,
                    mode: req.mode,
                    owner: req.owner.clone(),
                    group: req.group.clone(),
                    pinned: req.pinned,
                    ttl_ms: req.ttl_ms,
                    ttl_action: req.ttl_action.map(|a| a as u32),
                    ..Default::default()
                }))?;
            }
            Ok(())
        })
        .await
    }

    /// Removes the cached blocks of `path`'s files from the workers.
    pub async fn free(&self, path: &AlluxioPath, recursive: bool, forced: bool) -> Result<u64> {
        self.sync_path(path, self.settings.default_sync_interval_ms)
            .await?;
        let blocks = {
            let state = self.read_state();
            let id = lookup(&state, path)?;
            let inode = state.tree.get(id).expect("looked up");
            if inode.dir().is_some_and(|d| !d.children.is_empty()) && !recursive {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "Cannot free directory {path} without recursive"
                )));
            }
            let mut blocks = Vec::new();
            for sub in state.tree.subtree_ids(id) {
                let inode = state.tree.get(sub).expect("in subtree");
                let Some(file) = inode.file() else { continue };
                let sub_path = || state.tree.path_of(sub).unwrap_or_else(AlluxioPath::root);
                if inode.pinned && !forced {
                    return Err(AlluxioError::FailedPrecondition(format!(
                        "Cannot free pinned file {} (unpin it or use forced)",
                        sub_path()
                    )));
                }
                if inode.persistence != Persistence::Persisted && file.completed {
                    return Err(AlluxioError::FailedPrecondition(format!(
                        "Cannot free file {}: it is not persisted, so its cached blocks are its only copy",
                        sub_path()
                    )));
                }
                blocks.extend(inode.block_ids());
            }
            blocks
        };
        Ok(self.blocks.free_blocks(blocks))
    }

    // ----- mounts -----

    pub async fn mount(
        &self,
        path: &AlluxioPath,
        ufs_uri: &str,
        read_only: bool,
        shared: bool,
        options: BTreeMap<String, String>,
    ) -> Result<MountPointInfo> {
        if path.is_root() {
            return Err(AlluxioError::AlreadyExists(
                "The root is already mounted".to_string(),
            ));
        }
        let ufs = alluxio_ufs::create_ufs(ufs_uri, &options)?;
        let parent = path.parent().unwrap_or_else(AlluxioPath::root);
        {
            let state = self.read_state();
            if state.mounts.get(path).is_some() {
                return Err(AlluxioError::AlreadyExists(format!(
                    "Mount point {path} already exists"
                )));
            }
            if let Some(m) = state.mounts.resolve(path) {
                if m.mount.alluxio_path != AlluxioPath::root() && m.mount.read_only {
                    return Err(AlluxioError::PermissionDenied(format!(
                        "Cannot mount at {path}: it is under the read-only mount {}",
                        m.mount.alluxio_path
                    )));
                }
            }
            let new = alluxio_ufs::UfsUri::parse(ufs_uri)?;
            for m in state.mounts.iter() {
                let Ok(existing) = alluxio_ufs::UfsUri::parse(&m.ufs_uri) else {
                    continue;
                };
                let nested =
                    |a: &str, b: &str| a.is_empty() || a == b || b.starts_with(&format!("{a}/"));
                if existing.scheme == new.scheme
                    && existing.authority == new.authority
                    && (nested(&existing.path, &new.path) || nested(&new.path, &existing.path))
                    && m.alluxio_path != AlluxioPath::root()
                {
                    return Err(AlluxioError::InvalidArgument(format!(
                        "{ufs_uri} overlaps with {} mounted at {}",
                        m.ufs_uri, m.alluxio_path
                    )));
                }
            }
        }
        self.sync_path(&parent, self.settings.default_sync_interval_ms)
            .await?;
        self.sync_path(path, self.settings.default_sync_interval_ms)
            .await?;
        {
            let state = self.read_state();
            let parent_id = lookup(&state, &parent)?;
            if !state.tree.get(parent_id).is_some_and(Inode::is_dir) {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "{parent} is not a directory"
                )));
            }
            if state.tree.lookup(path).is_some() {
                return Err(AlluxioError::AlreadyExists(format!(
                    "Cannot mount at {path}: the path already exists"
                )));
            }
        }
        tokio::time::timeout(std::time::Duration::from_secs(60), ufs.check_reachable())
            .await
            .map_err(|_| {
                AlluxioError::Unavailable(format!("UFS {ufs_uri} did not answer within 60s"))
            })?
            .map_err(AlluxioError::from)?;

        let mount_id = self
            .commit(|txn| {
                if txn.state.mounts.get(path).is_some() || txn.state.tree.lookup(path).is_some() {
                    return Err(AlluxioError::AlreadyExists(format!(
                        "Mount point {path} already exists"
                    )));
                }
                let parent_id = lookup(txn.state, &parent)?;
                let mount_id = txn.state.next_mount_id;
                txn.apply(Entry::AddMountPoint(j::AddMountPointEntry {
                    mount_id,
                    alluxio_path: path.to_string(),
                    ufs_uri: ufs_uri.to_string(),
                    read_only,
                    shared,
                    options: options.clone().into_iter().collect(),
                }))?;
                let id = txn.next_inode_id();
                let now = now_ms();
                txn.apply(Entry::InodeDirectory(j::InodeDirectoryEntry {
                    id,
                    parent_id,
                    name: path.name().to_string(),
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
                }))?;
                Ok(mount_id)
            })
            .await?;
        tracing::info!(path = %path, ufs = ufs_uri, mount_id, read_only, "mounted");
        let state = self.read_state();
        let m = state
            .mounts
            .get(path)
            .ok_or_else(|| AlluxioError::Internal("mount vanished".into()))?;
        Ok(mount_info(m))
    }

    pub async fn unmount(&self, path: &AlluxioPath) -> Result<()> {
        if path.is_root() {
            return Err(AlluxioError::InvalidArgument(
                "Cannot unmount the root mount".to_string(),
            ));
        }
        self.commit(|txn| {
            if txn.state.mounts.get(path).is_none() {
                return Err(AlluxioError::NotFound(format!(
                    "{path} is not a mount point"
                )));
            }
            if let Some(m) = txn.state.mounts.mounts_below(path).first() {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "Cannot unmount {path}: the mount point {} is below it; unmount that first",
                    m.alluxio_path
                )));
            }
            if let Some(id) = txn.state.tree.lookup(path) {
                txn.apply(Entry::DeleteInode(j::DeleteInodeEntry {
                    id,
                    op_time_ms: now_ms(),
                }))?;
            }
            txn.apply(Entry::DeleteMountPoint(j::DeleteMountPointEntry {
                alluxio_path: path.to_string(),
            }))
        })
        .await?;
        tracing::info!(path = %path, "unmounted");
        Ok(())
    }

    pub async fn update_mount(
        &self,
        path: &AlluxioPath,
        read_only: bool,
        shared: bool,
        options: BTreeMap<String, String>,
    ) -> Result<MountPointInfo> {
        let uri = {
            let state = self.read_state();
            state
                .mounts
                .get(path)
                .map(|m| m.ufs_uri.clone())
                .ok_or_else(|| AlluxioError::NotFound(format!("{path} is not a mount point")))?
        };
        let ufs = alluxio_ufs::create_ufs(&uri, &options)?;
        tokio::time::timeout(std::time::Duration::from_secs(60), ufs.check_reachable())
            .await
            .map_err(|_| AlluxioError::Unavailable(format!("UFS {uri} did not answer within 60s")))?
            .map_err(AlluxioError::from)?;
        self.commit(|txn| {
            if txn.state.mounts.get(path).is_none() {
                return Err(AlluxioError::NotFound(format!(
                    "{path} is not a mount point"
                )));
            }
            txn.apply(Entry::UpdateMountPoint(j::UpdateMountPointEntry {
                alluxio_path: path.to_string(),
                read_only,
                shared,
                options: options.clone().into_iter().collect(),
            }))
        })
        .await?;
        let state = self.read_state();
        let m = state
            .mounts
            .get(path)
            .ok_or_else(|| AlluxioError::Internal("mount vanished".into()))?;
        Ok(mount_info(m))
    }

    pub fn mount_table(&self) -> Vec<MountPointInfo> {
        self.read_state().mounts.iter().map(mount_info).collect()
    }

    /// The real options of a mount, for clients and workers that access
    /// the UFS themselves.
    pub fn ufs_info(&self, mount_id: u64) -> Result<grpc::GetUfsInfoResponse> {
        let state = self.read_state();
        let m = state
            .mounts
            .by_id(mount_id)
            .ok_or_else(|| AlluxioError::NotFound(format!("No mount with id {mount_id}")))?;
        Ok(grpc::GetUfsInfoResponse {
            ufs_uri: m.ufs_uri.clone(),
            options: m.options.clone().into_iter().collect(),
            read_only: m.read_only,
        })
    }
}

/// Mount info for users: secrets masked.
pub fn mount_info(m: &crate::mount_table::MountPoint) -> MountPointInfo {
    MountPointInfo {
        alluxio_path: m.alluxio_path.to_string(),
        ufs_uri: m.ufs_uri.clone(),
        read_only: m.read_only,
        shared: m.shared,
        options: alluxio_ufs::options::masked(&m.options)
            .into_iter()
            .collect(),
        mount_id: m.id,
        ufs_type: m.kind().to_string(),
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

fn no_root() -> AlluxioError {
    AlluxioError::Internal("the root directory is missing".to_string())
}

/// The root inode and root mount, journaled on a master's first start.
pub fn bootstrap_root(
    txn: &mut Txn,
    root_ufs: &str,
    options: &BTreeMap<String, String>,
) -> Result<()> {
    if txn.state.tree.root().is_none() {
        let now = now_ms();
        txn.apply(Entry::InodeDirectory(j::InodeDirectoryEntry {
            id: ROOT_ID,
            parent_id: 0,
            name: String::new(),
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
        }))?;
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
