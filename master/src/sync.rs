//! Metadata sync: keeping the inode tree in step with the UFS.
//!
//! - A path that exists only in the UFS appears on first access (lazy
//!   load), with any missing parent directories.
//! - A directory's children are listed from the UFS the first time they
//!   are listed (`children_loaded`), and again when the sync interval says
//!   so: -1 never, 0 on every access, >0 at most once per interval.
//! - On a sync, files that changed in the UFS (length or modification
//!   time) are replaced by new inodes (so their old cached blocks, whose
//!   ids derive from the old inode id, are never served), and persisted
//!   inodes that vanished from the UFS are removed. Data not yet persisted
//!   and mount points are never removed by a sync.
//!
//! UFS calls happen without any lock; the results are applied afterwards
//! in journaled transactions that re-check the tree. A directory's listing
//! is read and applied a page at a time (`master.metadata_sync_batch_size`
//! entries), so no transaction is larger than a page.

use crate::fs_master::{resolve_mount, ufs_of, FileSystemMaster, Txn};
use crate::inode::{Inode, InodeKind, Persistence};
use alluxio_common::{now_ms, AlluxioError, AlluxioPath, Result};
use alluxio_proto::journal::{self as j, journal_entry::Entry};
use alluxio_ufs::UfsStatus;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

mod flight;
mod own_changes;
pub use flight::SyncsInFlight;
use flight::{Flight, FlightGuard};
pub use own_changes::OwnUfsChanges;

impl FileSystemMaster {
    fn sync_due(&self, id: u64, interval: i64) -> bool {
        match interval {
            i64::MIN..=-1 => false,
            0 => true,
            _ => {
                let times = self.sync_times.lock().unwrap_or_else(|p| p.into_inner());
                times.get(&id).is_none_or(|t| now_ms() - t >= interval)
            }
        }
    }

    fn mark_synced(&self, id: u64) {
        let mut times = self.sync_times.lock().unwrap_or_else(|p| p.into_inner());
        times.insert(id, now_ms());
    }

    /// Brings `path` itself up to date with the UFS.
    pub async fn sync_path(&self, path: &AlluxioPath, interval: i64) -> Result<()> {
        let (resolved, exists_id) = {
            let state = self.read_state();
            let ids = state.tree.resolve_prefix(path);
            let exists = ids.len() == path.depth() + 1;
            let deepest = state
                .tree
                .get(*ids.last().ok_or_else(crate::fs_master::no_root)?);
            if exists {
                let inode = deepest.expect("resolved");
                // Nothing to compare: data not yet in the UFS, or a mount
                // point (its UFS root always exists while mounted).
                if inode.persistence != Persistence::Persisted
                    || inode.is_mount_point()
                    || !self.sync_due(inode.id, interval)
                {
                    return Ok(());
                }
            } else {
                match deepest {
                    // Below a file nothing can exist.
                    Some(d) if !d.is_dir() => return Ok(()),
                    // A loaded directory already knows all its children,
                    // unless it is time to look again.
                    Some(d)
                        if ids.len() == path.depth()
                            && d.dir().is_some_and(|dir| dir.children_loaded)
                            && !self.sync_due(d.id, interval) =>
                    {
                        return Ok(())
                    }
                    // Missing intermediate directory under a directory that
                    // was never persisted: nothing in the UFS either.
                    Some(d) if d.persistence != Persistence::Persisted && !d.is_mount_point() => {
                        return Ok(())
                    }
                    _ => {}
                }
            }
            (
                resolve_mount(&state, path)?,
                exists.then(|| *ids.last().expect("non-empty")),
            )
        };
        let ufs = match ufs_of(&resolved) {
            Ok(ufs) => ufs,
            Err(e) if exists_id.is_some() => {
                tracing::warn!(path = %path, error = %e, "cannot sync; serving cached metadata");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let block_size = self.settings.default_block_size;
        // What this master itself is changing in the UFS is not applied as
        // a sync (see `own_changes`): read again, a few times at most.
        for _ in 0..3 {
            let read_point = self.own_ufs_changes.read_point();
            let status = ufs
                .status(&resolved.ufs_relative)
                .await
                .map_err(AlluxioError::from)?;
            let applied = self
                .commit(|txn| {
                    if !self.own_ufs_changes.may_apply(path, read_point) {
                        return Ok(false);
                    }
                    apply_status(txn, path, status.as_ref(), block_size).map(|()| true)
                })
                .await?;
            if applied {
                if let Some(id) = self.read_state().tree.lookup(path) {
                    self.mark_synced(id);
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Loads or refreshes the children of directory `path` from the UFS,
    /// a page of `master.metadata_sync_batch_size` entries at a time, each
    /// page applied in its own transaction: a directory with millions of
    /// objects never holds the namespace lock for long, its entries appear
    /// while the listing goes on, and only one page of the listing is in
    /// memory. One listing per directory runs at a time; other callers wait
    /// for it.
    pub async fn sync_children(&self, path: &AlluxioPath, interval: i64) -> Result<()> {
        let Some(dir_id) = due_directory(self, &self.read_state(), path, interval) else {
            return Ok(());
        };
        let flight = match self.syncs.join_or_start(dir_id) {
            Flight::Running(mut done) => {
                // Whatever the listing's outcome, what it applied is there.
                let _ = done.wait_for(|done| *done).await;
                return Ok(());
            }
            Flight::Started(flight) => flight,
        };
        // Planned by the one listing only (it walks every child), and after
        // taking the flight, so it sees what an earlier listing applied.
        let Some(plan) = self.plan_children_sync(path, interval)? else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let result = self.apply_listing(path, &plan, &flight).await;
        let entries = flight.entries();
        if entries > self.settings.sync_batch_size as u64 {
            tracing::info!(path = %path, entries, seconds = started.elapsed().as_secs_f64(),
                ok = result.is_ok(), "metadata sync of a large directory ended");
        }
        result
    }

    /// The children of directory `path` in batches of at most `batch` ids,
    /// sent as a sync of the directory that is due (or running) applies
    /// them: a listing of a directory with millions of UFS objects starts
    /// answering at once instead of after the whole sync. The sync runs
    /// on its own task, so it goes on when the receiver goes away. The
    /// directory is scanned again every 1, 2, 4... up to 8 s for what is
    /// new, and once more when the sync ends; an error of the sync ends
    /// the stream.
    pub fn list_children_while_syncing(
        self: &Arc<Self>,
        path: AlluxioPath,
        interval: i64,
        batch: usize,
    ) -> tokio::sync::mpsc::Receiver<Result<Vec<u64>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let fs = self.clone();
        tokio::spawn(async move {
            let sync = {
                let (fs, path) = (fs.clone(), path.clone());
                tokio::spawn(async move { fs.sync_children(&path, interval).await })
            };
            tokio::pin!(sync);
            let mut sent = HashSet::new();
            let mut wait = std::time::Duration::from_secs(1);
            loop {
                let ended = match tokio::time::timeout(wait, &mut sync).await {
                    Ok(result) => Some(result.unwrap_or_else(|e| {
                        Err(AlluxioError::Internal(format!("the sync failed: {e}")))
                    })),
                    Err(_) => None,
                };
                wait = (wait * 2).min(std::time::Duration::from_secs(8));
                let new = fs.children_not_in(&path, &mut sent);
                for chunk in new.chunks(batch.max(1)) {
                    if tx.send(Ok(chunk.to_vec())).await.is_err() {
                        return; // The lister went away; the sync goes on.
                    }
                }
                match ended {
                    None => continue,
                    Some(Ok(())) => return,
                    Some(Err(e)) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        rx
    }

    /// Children of directory `path` whose ids are not in `sent`, which
    /// gets them.
    fn children_not_in(&self, path: &AlluxioPath, sent: &mut HashSet<u64>) -> Vec<u64> {
        let state = self.read_state();
        let Some(dir) = state
            .tree
            .lookup(path)
            .and_then(|id| state.tree.get(id)?.dir())
        else {
            return Vec::new();
        };
        dir.children
            .values()
            .copied()
            .filter(|id| sent.insert(*id))
            .collect()
    }

    /// Whether listing directory `path` now would list it from the UFS.
    pub fn children_sync_due(&self, path: &AlluxioPath, interval: i64) -> bool {
        let state = self.read_state();
        due_directory(self, &state, path, interval).is_some()
            || state
                .tree
                .lookup(path)
                .is_some_and(|id| self.syncs.progress(id).is_some())
    }

    /// UFS entries applied so far by the listing of directory `path`, while
    /// one runs.
    pub fn sync_progress(&self, path: &AlluxioPath) -> Option<u64> {
        let id = self.read_state().tree.lookup(path)?;
        self.syncs.progress(id)
    }

    /// What a sync of `path`'s children needs, or `None` when there is
    /// nothing to do (not a directory, or loaded and not due).
    fn plan_children_sync(
        &self,
        path: &AlluxioPath,
        interval: i64,
    ) -> Result<Option<ChildrenSync>> {
        let state = self.read_state();
        let Some(id) = due_directory(self, &state, path, interval) else {
            return Ok(None);
        };
        let inode = state.tree.get(id).expect("looked up");
        let dir = inode.dir().expect("a directory");
        let persisted = inode.persistence == Persistence::Persisted || inode.is_mount_point();
        // Only children that are persisted now may be removed for missing
        // from the listing: anything written meanwhile is newer than it.
        let removable = if persisted {
            dir.children
                .values()
                .copied()
                .filter(|c| {
                    state
                        .tree
                        .get(*c)
                        .is_some_and(|i| i.persistence == Persistence::Persisted)
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Some(ChildrenSync {
            resolved: resolve_mount(&state, path)?,
            dir_id: id,
            persisted,
            removable,
        }))
    }

    async fn apply_listing(
        &self,
        path: &AlluxioPath,
        plan: &ChildrenSync,
        flight: &FlightGuard<'_>,
    ) -> Result<()> {
        let batch = self.settings.sync_batch_size.max(1);
        let block_size = self.settings.default_block_size;
        let dir_id = plan.dir_id;
        // Whether an entry was left alone: then the directory is not known
        // completely yet, and is listed again next time.
        let skipped = AtomicBool::new(false);
        if plan.persisted {
            let ufs = match ufs_of(&plan.resolved) {
                Ok(ufs) => ufs,
                Err(e) => {
                    tracing::warn!(path = %path, error = %e, "cannot list the UFS; serving cached metadata");
                    return Ok(());
                }
            };
            let read_point = self.own_ufs_changes.read_point();
            // Entries this master is changing in the UFS right now are left
            // as they are (see `own_changes`); a later listing sees them.
            let untouched = |name: &str| {
                let ok = path
                    .join(name)
                    .is_ok_and(|child| self.own_ufs_changes.may_apply(&child, read_point));
                if !ok {
                    skipped.store(true, Ordering::Relaxed);
                }
                ok
            };
            let mut pages = match ufs.list_pages(&plan.resolved.ufs_relative, batch).await {
                Ok(pages) => pages,
                Err(alluxio_ufs::UfsError::NotFound(_)) => alluxio_ufs::pages_of(Vec::new(), 1),
                Err(e) => return Err(e.into()),
            };
            // Ids standing for the UFS's entries so far (u64s, not the
            // listing: memory stays far below the inodes themselves).
            let mut listed = HashSet::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(AlluxioError::from)?;
                let ids = self
                    .commit(|txn| apply_page(txn, dir_id, &page, block_size, untouched))
                    .await?;
                let Some(ids) = ids else {
                    return Ok(()); // The directory was removed meanwhile.
                };
                listed.extend(ids);
                flight.applied(page.len() as u64);
                self.syncs.count_applied(page.len() as u64);
            }
            let vanished: Vec<u64> = plan
                .removable
                .iter()
                .copied()
                .filter(|id| !listed.contains(id))
                .collect();
            for chunk in vanished.chunks(batch) {
                self.commit(|txn| {
                    chunk.iter().try_for_each(|id| {
                        let name = txn.state.tree.get(*id).map(|i| i.name.clone());
                        match name {
                            Some(name) if untouched(&name[..]) => remove_if_vanished(txn, *id),
                            _ => Ok(()),
                        }
                    })
                })
                .await?;
            }
        }
        if skipped.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.commit(|txn| {
            let loaded = match txn.state.tree.get(dir_id).and_then(Inode::dir) {
                Some(dir) => dir.children_loaded,
                None => return Ok(()), // Removed meanwhile.
            };
            if !loaded {
                txn.apply(Entry::SetAttribute(j::SetAttributeEntry {
                    id: dir_id,
                    direct_children_loaded: Some(true),
                    ..Default::default()
                }))?;
            }
            Ok(())
        })
        .await?;
        self.mark_synced(dir_id);
        Ok(())
    }
}

/// The id of directory `path` when its children are to be listed from
/// the UFS now: never listed, or due by `interval`.
fn due_directory(
    fs: &FileSystemMaster,
    state: &crate::state::MasterState,
    path: &AlluxioPath,
    interval: i64,
) -> Option<u64> {
    let id = state.tree.lookup(path)?;
    let dir = state.tree.get(id)?.dir()?;
    (!dir.children_loaded || fs.sync_due(id, interval)).then_some(id)
}

/// A sync of one directory's children, planned under the read lock.
struct ChildrenSync {
    resolved: crate::mount_table::Resolved,
    dir_id: u64,
    persisted: bool,
    removable: Vec<u64>,
}

/// Applies what the UFS says of `path` (`None`: nothing there): removes
/// it, refreshes it, or creates it with any missing ancestors.
fn apply_status(
    txn: &mut Txn,
    path: &AlluxioPath,
    status: Option<&UfsStatus>,
    block_size: u64,
) -> Result<()> {
    let ids = txn.state.tree.resolve_prefix(path);
    let current = (ids.len() == path.depth() + 1).then(|| *ids.last().expect("non-empty"));
    match (status, current) {
        (None, Some(id)) => remove_if_vanished(txn, id),
        (None, None) => Ok(()),
        (Some(st), Some(id)) => replace_if_changed(txn, id, st, block_size).map(|_| ()),
        (Some(st), None) => {
            // Create missing ancestors as directories (they exist in
            // the UFS, at least implicitly), then the path itself.
            let mut parent = *ids.last().expect("root exists");
            let components: Vec<&str> = path.components().collect();
            for name in &components[ids.len() - 1..components.len() - 1] {
                let dir = UfsStatus {
                    name: name.to_string(),
                    is_dir: true,
                    length: 0,
                    mtime_ms: now_ms(),
                    fingerprint: String::new(),
                };
                parent = create_from_ufs(txn, parent, &dir, block_size)?;
            }
            create_from_ufs(txn, parent, st, block_size).map(|_| ())
        }
    }
}

/// Applies one page of a directory's UFS listing; returns the ids that
/// now stand for its entries, or `None` when the directory is gone.
fn apply_page(
    txn: &mut Txn,
    dir_id: u64,
    page: &[UfsStatus],
    block_size: u64,
    untouched: impl Fn(&str) -> bool,
) -> Result<Option<Vec<u64>>> {
    if txn.state.tree.get(dir_id).and_then(Inode::dir).is_none() {
        return Ok(None);
    }
    let mut ids = Vec::with_capacity(page.len());
    for st in page {
        if alluxio_common::path::validate_name(&st.name).is_err() {
            continue;
        }
        if !untouched(&st.name) {
            // Still known as what it was: not removed as vanished either.
            ids.extend(txn.state.tree.child(dir_id, &st.name));
            continue;
        }
        let id = match txn.state.tree.child(dir_id, &st.name) {
            Some(child) => replace_if_changed(txn, child, st, block_size)?,
            None => create_from_ufs(txn, dir_id, st, block_size)?,
        };
        ids.push(id);
    }
    Ok(Some(ids))
}

/// Journals a new inode for something found in the UFS; returns its id.
fn create_from_ufs(txn: &mut Txn, parent: u64, st: &UfsStatus, block_size: u64) -> Result<u64> {
    let id = txn.next_inode_id();
    let now = now_ms();
    let mtime = if st.mtime_ms > 0 { st.mtime_ms } else { now };
    let entry = if st.is_dir {
        Entry::InodeDirectory(j::InodeDirectoryEntry {
            id,
            parent_id: parent,
            name: st.name.clone(),
            owner: String::new(),
            group: String::new(),
            mode: 0o755,
            creation_time_ms: mtime,
            last_modification_time_ms: mtime,
            persistence_state: Persistence::Persisted as u32,
            pinned: false,
            ttl_ms: -1,
            ttl_action: 0,
            mount_point: false,
            direct_children_loaded: false,
        })
    } else {
        Entry::InodeFile(j::InodeFileEntry {
            id,
            parent_id: parent,
            name: st.name.clone(),
            owner: String::new(),
            group: String::new(),
            mode: 0o644,
            creation_time_ms: mtime,
            last_modification_time_ms: mtime,
            persistence_state: Persistence::Persisted as u32,
            pinned: false,
            ttl_ms: -1,
            ttl_action: 0,
            block_size_bytes: block_size,
            length: st.length,
            completed: true,
            ufs_mtime_ms: st.mtime_ms,
        })
    };
    txn.apply(entry)?;
    Ok(id)
}

/// Removes a persisted inode that no longer exists in the UFS. Keeps
/// unpersisted data, incomplete files and mount points (and their parents).
fn remove_if_vanished(txn: &mut Txn, id: u64) -> Result<()> {
    let Some(inode) = txn.state.tree.get(id) else {
        return Ok(());
    };
    if inode.persistence != Persistence::Persisted || inode.is_mount_point() {
        return Ok(());
    }
    let subtree = txn.state.tree.subtree_ids(id);
    let keeps_something = subtree.iter().any(|sub| {
        txn.state
            .tree
            .get(*sub)
            .is_some_and(|i| i.is_mount_point() || i.persistence != Persistence::Persisted)
    });
    if keeps_something {
        return Ok(());
    }
    txn.apply(Entry::DeleteInode(j::DeleteInodeEntry {
        id,
        op_time_ms: now_ms(),
    }))
}

/// Replaces a persisted inode whose UFS counterpart changed (different
/// kind, length or modification time) with a new inode; returns the id
/// that stands for `st` afterwards.
fn replace_if_changed(txn: &mut Txn, id: u64, st: &UfsStatus, block_size: u64) -> Result<u64> {
    let Some(inode) = txn.state.tree.get(id) else {
        return Ok(id);
    };
    if inode.persistence != Persistence::Persisted || inode.is_mount_point() {
        return Ok(id);
    }
    let changed = match &inode.kind {
        InodeKind::Directory(_) => !st.is_dir,
        InodeKind::File(f) => {
            st.is_dir
                || (f.completed
                    && (f.length != st.length
                        || (f.ufs_mtime_ms != 0
                            && st.mtime_ms != 0
                            && f.ufs_mtime_ms != st.mtime_ms)))
        }
    };
    if !changed {
        return Ok(id);
    }
    let parent = inode.parent_id;
    remove_if_vanished(txn, id)?;
    if txn.state.tree.get(id).is_some() {
        return Ok(id); // Kept: it holds data not yet persisted.
    }
    create_from_ufs(txn, parent, st, block_size)
}
