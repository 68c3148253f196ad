//! The daemon's state shared by every request, and the helpers the
//! operations in `meta_ops.rs` and `io_ops.rs` are built from: path and
//! attribute lookups with retries, and page-cache invalidation.

use crate::cache_behind::CacheBehind;
use crate::errno::{errno_of, with_retry};
use crate::handles::{Handles, UnopenedReaders};
use crate::inodes::InodeTable;
use crate::metadata_cache::MetadataCache;
use crate::metrics::FuseMetrics;
use crate::options::FuseOptions;
use crate::passthrough::Passthrough;
use crate::prefetch::FilePrefetcher;
use alluxio_client::FileSystem;
use alluxio_common::users::Users;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::FileInfo;
use fuser::{Errno, FileAttr, FileType, INodeNo};
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

/// Block size reported by stat(): programs size their buffers by it.
const STAT_BLOCK_SIZE: u32 = 1 << 20;

/// Attributes for a reply, with how long the kernel may keep them.
pub struct KernelAttr {
    pub attr: FileAttr,
    pub entry_timeout: Duration,
    pub attr_timeout: Duration,
}

pub struct FuseState {
    pub fs: FileSystem,
    pub options: FuseOptions,
    pub inodes: Mutex<InodeTable>,
    pub handles: Handles,
    pub passthrough: Passthrough,
    pub users: Users,
    pub metrics: Arc<FuseMetrics>,
    /// Set once the session exists (after the kernel handshake).
    pub notifier: OnceLock<fuser::Notifier>,
    /// The kernel accepted FUSE passthrough at init.
    pub kernel_passthrough: AtomicBool,
    /// The kernel opens files without asking (`no_open` granted at init).
    pub kernel_no_open: AtomicBool,
    /// Readers of the files it opened so.
    pub unopened: UnopenedReaders,
    /// Completed files' metadata, per caller, for `metadata_ttl`.
    pub metadata: MetadataCache,
    /// Small files fetched ahead of in-order readers.
    pub prefetch: Arc<FilePrefetcher>,
    /// Files read by passthrough from the UFS, cached after their close.
    pub cache_behind: Arc<CacheBehind>,
}

impl FuseState {
    pub fn new(
        fs: FileSystem,
        options: FuseOptions,
        root: &FileInfo,
        metrics: Arc<FuseMetrics>,
    ) -> Self {
        FuseState {
            fs,
            metadata: MetadataCache::new(options.metadata_ttl()),
            prefetch: Arc::new(FilePrefetcher::new(
                options.files_ahead(),
                options.prefetch_file_max,
                options.read_type,
            )),
            options,
            inodes: Mutex::new(InodeTable::new(root)),
            handles: Handles::default(),
            passthrough: Passthrough::default(),
            users: Users::default(),
            metrics,
            notifier: OnceLock::new(),
            kernel_passthrough: AtomicBool::new(false),
            kernel_no_open: AtomicBool::new(false),
            unopened: UnopenedReaders::default(),
            cache_behind: Arc::new(CacheBehind::default()),
        }
    }

    pub fn inodes(&self) -> MutexGuard<'_, InodeTable> {
        self.inodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a cluster operation with the mount's retry budget.
    pub async fn retry<T, F, Fut>(&self, op: F) -> Result<T, AlluxioError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AlluxioError>>,
    {
        with_retry(self.options.retry_timeout, op).await
    }

    pub fn path_of(&self, ino: u64) -> Result<String, Errno> {
        self.inodes().path(ino).ok_or(Errno::ENOENT)
    }

    pub fn child_path(&self, parent: u64, name: &std::ffi::OsStr) -> Result<String, Errno> {
        let name = name.to_str().ok_or(Errno::EINVAL)?;
        if name.is_empty() || name.contains('/') {
            return Err(Errno::EINVAL);
        }
        self.inodes().child_path(parent, name).ok_or(Errno::ENOENT)
    }

    /// Waits (up to the retry timeout) until a file this mount writes at
    /// `path` is completed. A program that closed the file has it complete
    /// only once the kernel's release arrives, which is asynchronous; a
    /// read, replace, rename or delete right after close must see the
    /// completed file, not race with its completion.
    pub async fn wait_for_writer(&self, path: &str) {
        if let Some(writer) = self.handles.writer_of(path) {
            if tokio::time::timeout(self.options.retry_timeout, writer.finished())
                .await
                .is_err()
            {
                tracing::warn!(path, "the file is still open for writing");
            }
        }
    }

    /// The master's view of `path` (synced with the UFS per the mount's
    /// sync interval), or what it said of a completed file a moment ago.
    pub async fn info_at(&self, path: &str) -> Result<FileInfo, Errno> {
        let caller = alluxio_common::auth::acting_user().unwrap_or_default();
        if let Some(info) = self.metadata.get(&caller, path) {
            self.metrics.metadata_cache_hits.inc();
            return Ok(info);
        }
        let sync = self.options.sync_interval_ms;
        let info = self
            .retry(|| self.fs.master().get_status(path, sync))
            .await
            .map_err(|e| self.log_error("getStatus", path, e))?;
        self.metadata.put(&caller, path, &info);
        Ok(info)
    }

    /// Records `info` in the inode table and returns its attributes;
    /// cached pages of a file whose content changed are dropped.
    pub fn remember(&self, info: &FileInfo, lookup: bool) -> FileAttr {
        let (ino, changed) = self.inodes().remember(info, lookup);
        if changed {
            self.invalidate(ino);
        }
        self.attr(info, ino)
    }

    /// [`FuseState::remember`], with the kernel's timeouts for `info`.
    pub fn remember_for_kernel(&self, info: &FileInfo, lookup: bool) -> KernelAttr {
        let attr = self.remember(info, lookup);
        self.for_kernel(info, attr)
    }

    pub fn for_kernel(&self, info: &FileInfo, attr: FileAttr) -> KernelAttr {
        let (entry_timeout, attr_timeout) = self.kernel_timeouts(info);
        KernelAttr {
            attr,
            entry_timeout,
            attr_timeout,
        }
    }

    /// Drops the kernel's cached pages and attributes of `ino`. Sent from
    /// a blocking thread: the kernel may wait on a request of ours first.
    pub fn invalidate(&self, ino: u64) {
        if let Some(n) = self.notifier.get().cloned() {
            tracing::info!(
                ino,
                "file changed in the cluster; dropping its cached pages"
            );
            tokio::task::spawn_blocking(move || {
                if let Err(e) = n.inval_inode(INodeNo(ino), 0, 0) {
                    tracing::debug!(ino, error = %e, "page cache invalidation failed");
                }
            });
        }
    }

    /// How long the kernel may keep `info`'s name and attributes (entry,
    /// attr): a completed file never changes (a changed UFS file becomes a
    /// new inode), so the kernel keeps it as long as the daemon's metadata
    /// cache would (a minute on read-only mounts) and asks nothing for it
    /// meanwhile; directories and files being written get the mount's
    /// `entry_timeout` and `attr_timeout`.
    pub fn kernel_timeouts(&self, info: &FileInfo) -> (Duration, Duration) {
        let (entry, attr) = (self.options.entry_timeout, self.options.attr_timeout);
        if info.folder || !info.completed {
            return (entry, attr);
        }
        let kept = self.options.metadata_ttl();
        (entry.max(kept), attr.max(kept))
    }

    pub fn attr(&self, info: &FileInfo, ino: u64) -> FileAttr {
        let size = if info.completed || info.folder {
            info.length
        } else {
            self.handles.written_len(ino).unwrap_or(info.length)
        };
        let ms = |t: i64| UNIX_EPOCH + Duration::from_millis(t.max(0) as u64);
        let mtime = ms(info.last_modification_time_ms);
        let default_mode = if info.folder { 0o755 } else { 0o644 };
        let mode = if info.mode & 0o7777 == 0 {
            default_mode
        } else {
            info.mode & 0o7777
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: mtime,
            mtime,
            ctime: mtime,
            crtime: ms(info.creation_time_ms),
            kind: if info.folder {
                FileType::Directory
            } else {
                FileType::RegularFile
            },
            perm: mode as u16,
            nlink: if info.folder { 2 } else { 1 },
            uid: self.users.uid(&info.owner),
            gid: self.users.gid(&info.group),
            rdev: 0,
            blksize: STAT_BLOCK_SIZE,
            flags: 0,
        }
    }

    /// A file system acting for the user of a request (owner of what it
    /// creates).
    pub fn fs_for(&self, uid: u32, gid: u32) -> FileSystem {
        self.fs
            .as_identity(self.users.user_name(uid), self.users.group_name(gid))
    }

    pub fn refuse_if_read_only(&self, what: &str, path: &str) -> Result<(), Errno> {
        if self.options.read_only {
            tracing::warn!(path, "{what} refused: the mount is read-only");
            return Err(Errno::EROFS);
        }
        Ok(())
    }

    /// Logs a cluster error with the operation and path, and maps it to
    /// an errno.
    pub fn log_error(&self, op: &str, path: &str, e: AlluxioError) -> Errno {
        let errno = errno_of(&e);
        if errno == Errno::ENOENT {
            tracing::debug!(op, path, error = %e, "not found");
        } else {
            tracing::warn!(op, path, error = %e, "operation failed");
        }
        errno
    }
}
