//! The mount table: mount, unmount, update, list, and UFS info for clients.

use super::*;

impl FileSystemMaster {
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
            if new.scheme == "file" {
                self.check_local_root_allowed(&new.path, ufs_uri)?;
            }
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
        check_reachable(ufs.as_ref(), ufs_uri).await?;

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
                txn.apply(mount_point_entry(id, parent_id, path.name()))?;
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
        check_reachable(ufs.as_ref(), &uri).await?;
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

    /// `file://` mounts only inside `master.allowed_local_ufs_roots`
    /// (`path` is the URI's path without its leading `/`, and has no `..`).
    fn check_local_root_allowed(&self, path: &str, ufs_uri: &str) -> Result<()> {
        let roots = &self.settings.allowed_local_ufs_roots;
        let inside = |root: &String| {
            let root = root.trim_matches('/');
            root.is_empty() || path == root || path.starts_with(&format!("{root}/"))
        };
        if roots.iter().any(inside) {
            return Ok(());
        }
        Err(AlluxioError::PermissionDenied(format!(
            "{ufs_uri} is not inside a directory of master.allowed_local_ufs_roots ({})",
            if roots.is_empty() {
                "empty: no local directory may be mounted".to_string()
            } else {
                roots.join(", ")
            }
        )))
    }

    pub fn mount_table(&self) -> Vec<MountPointInfo> {
        self.read_state().mounts.iter().map(mount_info).collect()
    }

    /// What a reader of mount `mount_id` needs; its credentials only
    /// `with_secrets` (for workers).
    pub fn ufs_info(&self, mount_id: u64, with_secrets: bool) -> Result<grpc::GetUfsInfoResponse> {
        let state = self.read_state();
        let m = state
            .mounts
            .by_id(mount_id)
            .ok_or_else(|| AlluxioError::NotFound(format!("No mount with id {mount_id}")))?;
        let options = if with_secrets {
            m.options.clone()
        } else {
            alluxio_ufs::options::without_secrets(&m.options)
        };
        Ok(grpc::GetUfsInfoResponse {
            ufs_uri: m.ufs_uri.clone(),
            secrets_withheld: options.len() < m.options.len(),
            options: options.into_iter().collect(),
            read_only: m.read_only,
        })
    }
}

/// How long a URL from [`FileSystemMaster::ufs_read_url`] works.
pub const READ_URL_VALIDITY: std::time::Duration = std::time::Duration::from_secs(600);

impl FileSystemMaster {
    /// A signed, expiring URL of the UFS object of the persisted file at
    /// `path`, for a reader who may read the file but not see its
    /// mount's credentials. The caller's right to read is checked by the
    /// service. FailedPrecondition for files with no UFS object yet and
    /// for stores that cannot sign URLs.
    pub async fn ufs_read_url(&self, path: &AlluxioPath) -> Result<grpc::GetUfsReadUrlResponse> {
        let (ufs, ufs_path) = {
            let state = self.read_state();
            let id = lookup(&state, path)?;
            let inode = state
                .tree
                .get(id)
                .ok_or_else(|| AlluxioError::NotFound(format!("Path {path} does not exist")))?;
            let persisted_file = match &inode.kind {
                InodeKind::File(f) => f.completed && inode.persistence == Persistence::Persisted,
                _ => false,
            };
            if !persisted_file {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "{path} is not a completed file persisted to the UFS"
                )));
            }
            let resolved = resolve_mount(&state, path)?;
            (ufs_of(&resolved)?, resolved.ufs_relative.clone())
        };
        let expires_at_ms =
            alluxio_common::now_ms().saturating_add(READ_URL_VALIDITY.as_millis() as i64);
        match ufs.signed_read_url(&ufs_path, READ_URL_VALIDITY).await? {
            Some(url) => Ok(grpc::GetUfsReadUrlResponse { url, expires_at_ms }),
            None => Err(AlluxioError::FailedPrecondition(format!(
                "the under storage of {path} ({}) cannot sign read URLs",
                ufs.kind()
            ))),
        }
    }
}

/// How long a new or updated mount's UFS has to answer.
const REACHABLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Refuses a UFS that cannot be listed (within a bounded time).
async fn check_reachable(ufs: &dyn alluxio_ufs::UnderFileSystem, uri: &str) -> Result<()> {
    tokio::time::timeout(REACHABLE_TIMEOUT, ufs.check_reachable())
        .await
        .map_err(|_| {
            AlluxioError::Unavailable(format!(
                "UFS {uri} did not answer within {}s",
                REACHABLE_TIMEOUT.as_secs()
            ))
        })?
        .map_err(AlluxioError::from)
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
