//! Namespace operations: lookups, attributes, directories, renames,
//! deletes and statfs. Each one is an async function over the shared
//! [`FuseState`] returning what the reply needs or an errno.

use crate::handles::{DirHandle, Handle};
use crate::state::{FuseState, KernelAttr};
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::{CreateDirectoryRequest, FileInfo, SetAttributeRequest};
use fuser::{Errno, FileType};
use std::ffi::OsStr;

/// One directory entry for a readdir reply.
pub struct DirEntry {
    pub ino: u64,
    pub name: String,
    pub kind: FileType,
    /// With readdirplus: the entry's attributes (the kernel counts it as
    /// a lookup once it accepts the entry).
    pub info: Option<FileInfo>,
    /// The cookie that continues the listing after this entry.
    pub next_offset: u64,
}

/// Entries per batch pulled from a directory handle for one reply.
const READDIR_BATCH: usize = 256;

pub struct StatFs {
    pub blocks: u64,
    pub free: u64,
    pub block_size: u32,
}

impl FuseState {
    pub async fn lookup(&self, parent: u64, name: &OsStr) -> Result<KernelAttr, Errno> {
        let path = self.child_path(parent, name)?;
        let info = self.info_at(&path).await?;
        Ok(self.remember_for_kernel(&info, true))
    }

    pub async fn getattr(&self, ino: u64) -> Result<KernelAttr, Errno> {
        let path = self.path_of(ino)?;
        let info = self.info_at(&path).await?;
        self.remember(&info, false);
        // Attributes under the kernel's number: a file replaced at the same
        // path (truncated by an open of ours) keeps it.
        Ok(self.for_kernel(&info, self.attr(&info, ino)))
    }

    /// chmod/chown go to the master; truncation is allowed only where it
    /// changes nothing (Alluxio files are write-once); times are ignored.
    pub async fn setattr(
        &self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
    ) -> Result<KernelAttr, Errno> {
        let path = self.path_of(ino)?;
        if mode.is_some() || uid.is_some() || gid.is_some() {
            self.refuse_if_read_only("chmod/chown", &path)?;
            let req = SetAttributeRequest {
                path: path.clone(),
                mode: mode.map(|m| m & 0o7777),
                owner: uid.map(|u| self.users.user_name(u)),
                group: gid.map(|g| self.users.group_name(g)),
                ..Default::default()
            };
            self.metadata.forget_tree(&path);
            self.retry(|| self.fs.master().set_attribute(req.clone()))
                .await
                .map_err(|e| self.log_error("setAttribute", &path, e))?;
        }
        let attr = self.getattr(ino).await?;
        if let Some(size) = size {
            if size != attr.attr.size {
                tracing::warn!(
                    path,
                    size,
                    current = attr.attr.size,
                    "truncate refused: Alluxio files are write-once (open with O_TRUNC to replace one)"
                );
                return Err(Errno::EOPNOTSUPP);
            }
        }
        Ok(attr)
    }

    pub async fn mkdir(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<KernelAttr, Errno> {
        let path = self.child_path(parent, name)?;
        self.refuse_if_read_only("mkdir", &path)?;
        let req = CreateDirectoryRequest {
            path: path.clone(),
            mode: Some(mode & 0o7777),
            owner: self.users.user_name(uid),
            group: self.users.group_name(gid),
            ..Default::default()
        };
        let info = self
            .retry(|| self.fs.master().create_directory(req.clone()))
            .await
            .map_err(|e| self.log_error("mkdir", &path, e))?;
        Ok(self.remember_for_kernel(&info, true))
    }

    pub async fn unlink(&self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        self.remove(parent, name, false).await
    }

    pub async fn rmdir(&self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        self.remove(parent, name, true).await
    }

    async fn remove(&self, parent: u64, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let path = self.child_path(parent, name)?;
        self.refuse_if_read_only("delete", &path)?;
        self.wait_for_writer(&path).await;
        let info = self.info_at(&path).await?;
        match (dir, info.folder) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            _ => {}
        }
        self.metadata.forget_tree(&path);
        let deleted = self
            .retry(|| self.fs.master().delete(&path, false, false))
            .await
            .map_err(|e| self.log_error("delete", &path, e));
        self.metadata.forget_tree(&path);
        deleted
    }

    /// rename(2): replaces an existing file at the target (not atomically:
    /// the master has no replacing rename), unless RENAME_NOREPLACE.
    pub async fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        let from = self.child_path(parent, name)?;
        let to = self.child_path(new_parent, new_name)?;
        self.refuse_if_read_only("rename", &from)?;
        self.wait_for_writer(&from).await;
        self.wait_for_writer(&to).await;
        self.metadata.forget_tree(&from);
        self.metadata.forget_tree(&to);
        let mut result = self.retry(|| self.fs.master().rename(&from, &to)).await;
        if let Err(AlluxioError::AlreadyExists(_)) = &result {
            let target = self.info_at(&to).await?;
            let source = self.info_at(&from).await?;
            if target.folder != source.folder {
                return Err(if target.folder {
                    Errno::EISDIR
                } else {
                    Errno::ENOTDIR
                });
            }
            if !no_replace {
                // POSIX replaces a file, or an empty directory (a full one
                // fails the non-recursive delete: ENOTEMPTY).
                self.retry(|| self.fs.master().delete(&to, false, false))
                    .await
                    .map_err(|e| self.log_error("delete", &to, e))?;
                result = self.retry(|| self.fs.master().rename(&from, &to)).await;
            }
        }
        result.map_err(|e| self.log_error("rename", &from, e))?;
        // Once more: a lookup may have cached the target while it moved.
        self.metadata.forget_tree(&from);
        self.metadata.forget_tree(&to);
        self.inodes().renamed(&from, &to);
        Ok(())
    }

    /// The master's listing of directory `path`, batch by batch.
    async fn list(
        &self,
        path: &str,
    ) -> Result<futures::stream::BoxStream<'static, alluxio_common::Result<Vec<FileInfo>>>, Errno>
    {
        let sync = self.options.sync_interval_ms;
        self.retry(|| self.fs.master().list_status_batches(path, false, sync))
            .await
            .map_err(|e| self.log_error("listStatus", path, e))
    }

    pub async fn opendir(&self, ino: u64) -> Result<u64, Errno> {
        let path = self.path_of(ino)?;
        let handle = if self.options.read_only {
            // The kernel keeps read-only mounts' listings (FOPEN_CACHE_DIR)
            // and serves a repeated `ls` without a readdir: ask the master
            // only when one comes. The kernel has checked the caller's
            // permission to open the directory (default_permissions).
            DirHandle::lazy(path)
        } else {
            DirHandle::new(path.clone(), self.list(&path).await?)
        };
        self.metrics.open_handles.inc();
        Ok(self
            .handles
            .insert(Handle::Dir(std::sync::Arc::new(handle))))
    }

    /// Entries from cookie `offset` on: 0 and 1 are "." and "..", then the
    /// children in the master's order.
    pub async fn readdir(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        plus: bool,
    ) -> Result<Vec<DirEntry>, Errno> {
        let dir = self.handles.dir(fh).ok_or(Errno::EBADF)?;
        if !dir.started().await {
            dir.start(self.list(&dir.path).await?).await;
        }
        let mut out = Vec::new();
        let own = if plus && offset < 2 {
            Some(self.info_at(&dir.path).await?)
        } else {
            None
        };
        for (i, name) in [".", ".."].into_iter().enumerate() {
            if offset <= i as u64 {
                out.push(DirEntry {
                    ino,
                    name: name.to_string(),
                    kind: FileType::Directory,
                    info: own.clone(),
                    next_offset: i as u64 + 1,
                });
            }
        }
        let from = offset.saturating_sub(2) as usize;
        let children = dir
            .entries(from, READDIR_BATCH)
            .await
            .map_err(|e| self.log_error("listStatus", &dir.path, e))?;
        // The listing answers the lookups that usually follow it (`ls -l`,
        // a data loader opening each file).
        let caller = alluxio_common::auth::acting_user().unwrap_or_default();
        for child in &children {
            self.metadata.put(&caller, &child.path, child);
        }
        self.prefetch
            .listed(&dir.path, from, children.iter().map(|c| c.name.clone()));
        let inodes = self.inodes();
        for (i, child) in children.into_iter().enumerate() {
            out.push(DirEntry {
                ino: inodes.ino_of(&child),
                name: child.name.clone(),
                kind: if child.folder {
                    FileType::Directory
                } else {
                    FileType::RegularFile
                },
                next_offset: (from + i) as u64 + 3,
                info: plus.then_some(child),
            });
        }
        Ok(out)
    }

    pub fn releasedir(&self, fh: u64) {
        if self.handles.remove(fh).is_some() {
            self.metrics.open_handles.dec();
        }
    }

    /// Capacity and usage of every live worker's tiers.
    pub async fn statfs(&self) -> Result<StatFs, Errno> {
        let workers = self
            .retry(|| self.fs.master().worker_infos())
            .await
            .map_err(|e| self.log_error("statfs", "/", e))?;
        let (capacity, used) = workers
            .iter()
            .filter(|w| w.state == "LIVE")
            .flat_map(|w| w.tiers.iter())
            .fold((0u64, 0u64), |(c, u), t| {
                (c + t.capacity_bytes, u + t.used_bytes)
            });
        let block_size = 4096u32;
        Ok(StatFs {
            blocks: capacity / u64::from(block_size),
            free: capacity.saturating_sub(used) / u64::from(block_size),
            block_size,
        })
    }
}
