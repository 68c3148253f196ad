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
//! in a journaled transaction that re-checks the tree.

use crate::fs_master::{resolve_mount, ufs_of, FileSystemMaster, Txn};
use crate::inode::{Inode, InodeKind, Persistence};
use alluxio_common::{now_ms, AlluxioError, AlluxioPath, Result};
use alluxio_proto::journal::{self as j, journal_entry::Entry};
use alluxio_ufs::UfsStatus;

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
            let deepest = state.tree.get(*ids.last().ok_or_else(|| {
                AlluxioError::Internal("the root directory is missing".to_string())
            })?);
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
        let status = ufs
            .status(&resolved.ufs_relative)
            .await
            .map_err(AlluxioError::from)?;
        let block_size = self.settings.default_block_size;

        self.commit(|txn| {
            let ids = txn.state.tree.resolve_prefix(path);
            let current = (ids.len() == path.depth() + 1).then(|| *ids.last().expect("non-empty"));
            match (&status, current) {
                (None, Some(id)) => remove_if_vanished(txn, id),
                (None, None) => Ok(()),
                (Some(st), Some(id)) => replace_if_changed(txn, id, st, block_size),
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
        })
        .await?;
        if let Some(id) = self.read_state().tree.lookup(path) {
            self.mark_synced(id);
        }
        Ok(())
    }

    /// Loads or refreshes the children of directory `path` from the UFS.
    pub async fn sync_children(&self, path: &AlluxioPath, interval: i64) -> Result<()> {
        let (resolved, dir_id, persisted) = {
            let state = self.read_state();
            let Some(id) = state.tree.lookup(path) else {
                return Ok(());
            };
            let inode = state.tree.get(id).expect("looked up");
            let Some(dir) = inode.dir() else {
                return Ok(());
            };
            if dir.children_loaded && !self.sync_due(id, interval) {
                return Ok(());
            }
            let persisted = inode.persistence == Persistence::Persisted || inode.is_mount_point();
            (resolve_mount(&state, path)?, id, persisted)
        };
        let listing = if persisted {
            let ufs = match ufs_of(&resolved) {
                Ok(ufs) => ufs,
                Err(e) => {
                    tracing::warn!(path = %path, error = %e, "cannot list the UFS; serving cached metadata");
                    return Ok(());
                }
            };
            match ufs.list(&resolved.ufs_relative).await {
                Ok(list) => list,
                Err(alluxio_ufs::UfsError::NotFound(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            }
        } else {
            Vec::new()
        };

        let block_size = self.settings.default_block_size;
        self.commit(|txn| {
            let Some(dir) = txn.state.tree.get(dir_id).and_then(Inode::dir) else {
                return Ok(()); // Removed meanwhile.
            };
            let loaded = dir.children_loaded;
            let existing: Vec<(String, u64)> = dir
                .children
                .iter()
                .map(|(n, id)| (n.to_string(), *id))
                .collect();
            let mut in_ufs = std::collections::HashSet::new();
            for st in &listing {
                if alluxio_common::path::validate_name(&st.name).is_err() {
                    continue;
                }
                in_ufs.insert(st.name.as_str());
                match txn.state.tree.child(dir_id, &st.name) {
                    Some(child) => replace_if_changed(txn, child, st, block_size)?,
                    None => {
                        create_from_ufs(txn, dir_id, st, block_size)?;
                    }
                }
            }
            if persisted {
                for (name, child) in existing {
                    if !in_ufs.contains(name.as_str()) {
                        remove_if_vanished(txn, child)?;
                    }
                }
            }
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
/// kind, length or modification time) with a new inode.
fn replace_if_changed(txn: &mut Txn, id: u64, st: &UfsStatus, block_size: u64) -> Result<()> {
    let Some(inode) = txn.state.tree.get(id) else {
        return Ok(());
    };
    if inode.persistence != Persistence::Persisted || inode.is_mount_point() {
        return Ok(());
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
        return Ok(());
    }
    let parent = inode.parent_id;
    remove_if_vanished(txn, id)?;
    if txn.state.tree.get(id).is_some() {
        return Ok(()); // Kept: it holds data not yet persisted.
    }
    create_from_ufs(txn, parent, st, block_size).map(|_| ())
}
