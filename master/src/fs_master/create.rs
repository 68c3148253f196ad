//! Creating files and directories, and completing files.

use super::*;

impl FileSystemMaster {
    pub async fn create_directory(
        &self,
        path: &AlluxioPath,
        recursive: bool,
        allow_exists: bool,
        persist: bool,
        attrs: NewInodeAttrs,
        sync_interval: i64,
    ) -> Result<FileInfo> {
        let attrs = self.without_unallowed_setuid(path, attrs);
        self.sync_path(path, sync_interval).await?;
        if let Some(parent) = path.parent() {
            self.sync_path(&parent, sync_interval).await?;
        }
        // From the plan to the commit, changes of related paths wait and
        // syncs leave the new directory alone (see `sync/own_changes.rs`).
        let _own_change = self.own_ufs_changes.begin(vec![path.clone()]).await;
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
        let attrs = self.without_unallowed_setuid(path, attrs);
        if path.is_root() {
            return Err(AlluxioError::AlreadyExists(
                "Path / already exists".to_string(),
            ));
        }
        self.sync_path(path, sync_interval).await?;
        if let Some(parent) = path.parent() {
            self.sync_path(&parent, sync_interval).await?;
        }
        let persist_dirs = write_type != grpc::WriteType::MustCache;
        // From the plan to the commit, changes of related paths wait (a
        // rename onto this path has changed the UFS already) and syncs
        // leave new parents made in the UFS alone.
        let _own_change = self.own_ufs_changes.begin(vec![path.clone()]).await;
        let (missing, resolved) = self.plan_create(path, recursive, false)?;
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
}
