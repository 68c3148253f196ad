//! Deleting, renaming, changing attributes and freeing cached blocks.

use super::*;

impl FileSystemMaster {
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
        // Listed before the turn is taken: the listing is a sync, which
        // leaves paths alone while this delete holds them.
        self.sync_children_if_dir(path, recursive, sync_interval)
            .await?;
        // From the checks to the commit, changes of related paths wait and syncs
        // leave the path alone (see `sync/own_changes.rs`).
        let _own_change = self.own_ufs_changes.begin(vec![path.clone()]).await;
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

    /// The children of `path` listed from the UFS when it is a directory
    /// that a non-recursive delete must find empty.
    async fn sync_children_if_dir(
        &self,
        path: &AlluxioPath,
        recursive: bool,
        sync_interval: i64,
    ) -> Result<()> {
        let is_dir = {
            let state = self.read_state();
            state
                .tree
                .lookup(path)
                .and_then(|id| state.tree.get(id))
                .is_some_and(Inode::is_dir)
        };
        if is_dir && !recursive {
            self.sync_children(path, sync_interval).await?;
        }
        Ok(())
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
        // From the checks to the commit, changes of related paths wait and syncs
        // leave both paths alone (see `sync/own_changes.rs`).
        let _own_change = self
            .own_ufs_changes
            .begin(vec![src.clone(), dst.clone()])
            .await;
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
        let mode = req.mode.map(|m| self.mode_allowed_at(&path, m));
        self.sync_path(&path, sync_interval).await?;
        let change = |id| {
            Entry::SetAttribute(j::SetAttributeEntry {
                id,
                mode,
                owner: req.owner.clone(),
                group: req.group.clone(),
                pinned: req.pinned,
                ttl_ms: req.ttl_ms,
                ttl_action: req.ttl_action.map(|a| a as u32),
                ..Default::default()
            })
        };
        if !req.recursive {
            return self
                .commit(|txn| {
                    let id = lookup(txn.state, &path)?;
                    txn.apply(change(id))
                })
                .await;
        }
        // A whole subtree in bounded transactions, each holding the write
        // lock only for its batch: writers elsewhere go on meanwhile. Not
        // atomic (as in Alluxio): a crash leaves a prefix changed, and
        // entries created meanwhile under the path may be missed.
        let ids = {
            let state = self.read_state();
            let id = lookup(&state, &path)?;
            state.tree.subtree_ids(id)
        };
        for batch in ids.chunks(self.settings.change_batch_size) {
            self.commit(|txn| {
                for &id in batch {
                    // Deleted since the subtree was read: nothing to change.
                    if txn.state.tree.get(id).is_some() {
                        txn.apply(change(id))?;
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
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
}
