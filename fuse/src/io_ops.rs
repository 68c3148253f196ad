//! File data operations: open (through the daemon or by passthrough),
//! create, read, write, flush, fsync and release.

use crate::cache_behind::CacheBehind;
use crate::handles::{Handle, ReadHandle, WriteError, WriteHandle};
use crate::passthrough::Source;
use crate::state::FuseState;
use alluxio_client::{CreateOptions, FileReader, LocalFile};
use alluxio_common::auth::ActAs;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::FileInfo;
use bytes::Bytes;
use fuser::{BackingId, Errno, FileAttr, OpenFlags, ReplyOpen};
use std::ffi::OsStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How often the leases of passthrough files are renewed (the worker
/// drops leases after 10 minutes without news).
pub const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(60);

/// Files smaller than this are read through the daemon (and then the
/// kernel's page cache), not by passthrough.
pub const PASSTHROUGH_MIN_BYTES: u64 = 1 << 20;

/// How a file was opened.
pub enum Opened {
    /// Reads (or writes) come to the daemon; a completed file opened for
    /// reading keeps its page cache.
    Daemon { fh: u64, reading: bool },
    /// The kernel reads the local worker's copy (or the file's UFS
    /// object) itself.
    Passthrough { fh: u64, backing: Arc<BackingId> },
}

impl FuseState {
    pub async fn open(
        &self,
        ino: u64,
        flags: OpenFlags,
        uid: u32,
        gid: u32,
        reply: &ReplyOpen,
    ) -> Result<Opened, Errno> {
        let path = self.path_of(ino)?;
        if flags.0 & libc::O_ACCMODE == libc::O_WRONLY || flags.0 & libc::O_TRUNC != 0 {
            return self.open_for_write(ino, &path, flags, uid, gid).await;
        }
        self.wait_for_writer(&path).await;
        let info = self.info_at(&path).await?;
        let reader = self.reader_for(&path, info)?;
        if let Some(caller) = alluxio_common::auth::acting_as() {
            self.prefetch_after(&path, caller);
        }
        // Small files stay in the mount's own page cache: setting up
        // passthrough (leases, a backing file) costs more than reading them.
        let passthrough = self.options.passthrough
            && self.kernel_passthrough.load(Ordering::Relaxed)
            && reader.len() >= PASSTHROUGH_MIN_BYTES;
        if passthrough {
            let _setup = self.passthrough.setup.lock().await;
            if let Some(backing) = self.passthrough.reuse(ino) {
                return Ok(self.passthrough_handle(ino, backing, reader.len()));
            }
            if self.passthrough.can_start(ino) {
                match self.start_passthrough(reader.info(), reply).await {
                    Ok(Some((backing, local))) => {
                        self.passthrough
                            .started(ino, backing.clone(), Source::Cached(local));
                        return Ok(self.passthrough_handle(ino, backing, reader.len()));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.metrics.passthrough_fallbacks.inc();
                        tracing::warn!(path, error = %e, "passthrough failed; reading through the daemon");
                    }
                }
                if self.options.ufs_passthrough {
                    if let Some(backing) = self.start_ufs_passthrough(&path, &reader, reply).await {
                        let info = Arc::new(reader.info().clone());
                        let cache_behind = CacheBehind::wanted(reader.read_type());
                        let source = Source::Ufs(cache_behind.then_some(info));
                        self.passthrough.started(ino, backing.clone(), source);
                        self.metrics.ufs_passthrough_opens.inc();
                        return Ok(self.passthrough_handle(ino, backing, reader.len()));
                    }
                }
            }
        }
        Ok(self.daemon_handle(ino, reader))
    }

    /// The file's UFS object registered with the kernel, when its mount is
    /// a directory this host sees and the object is still the one the
    /// master knows; `None` otherwise (then the daemon reads it through
    /// the workers, as ever).
    async fn start_ufs_passthrough(
        &self,
        path: &str,
        reader: &FileReader,
        reply: &ReplyOpen,
    ) -> Option<Arc<BackingId>> {
        let file = match self.fs.open_ufs_file(reader.info()).await {
            Ok(file) => file?,
            Err(e) => {
                tracing::debug!(path, error = %e, "the UFS object cannot be opened here");
                return None;
            }
        };
        match reply.open_backing(&file) {
            Ok(backing) => Some(Arc::new(backing)),
            Err(e) => {
                self.metrics.passthrough_fallbacks.inc();
                tracing::warn!(path, error = %e, "the kernel refused the UFS object as a backing file");
                None
            }
        }
    }

    /// An open for reading answered on the thread that read the request,
    /// without a task or a call: for a small completed file whose metadata
    /// the daemon holds for `caller` (the common case of a data loader
    /// reading a listed directory). `None`: take the full path.
    pub fn open_from_cache(
        &self,
        ino: u64,
        flags: OpenFlags,
        caller: impl FnOnce() -> ActAs,
    ) -> Option<Result<Opened, Errno>> {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY || flags.0 & libc::O_TRUNC != 0 {
            return None;
        }
        let path = self.path_of(ino).ok()?;
        let caller = caller();
        let info = self.metadata.get(&caller.user, &path)?;
        let may_passthrough = self.options.passthrough
            && self.kernel_passthrough.load(Ordering::Relaxed)
            && info.length >= PASSTHROUGH_MIN_BYTES;
        if may_passthrough || self.handles.writer_of(&path).is_some() {
            return None;
        }
        self.metrics.metadata_cache_hits.inc();
        let opened = self
            .reader_for(&path, info)
            .map(|reader| self.daemon_handle(ino, reader));
        if opened.is_ok() {
            self.prefetch_after(&path, caller);
        }
        Some(opened)
    }

    /// Hands the files after `path` to the prefetcher if the caller is
    /// reading its directory in order.
    fn prefetch_after(&self, path: &str, caller: ActAs) {
        let Some((dir, name)) = path.rsplit_once('/') else {
            return;
        };
        let dir = if dir.is_empty() { "/" } else { dir };
        for ahead in self.prefetch.opened(dir, name) {
            match self.metadata.get(&caller.user, &ahead.path) {
                Some(info) if self.prefetch.wants(&info) => {
                    self.metrics.prefetched_files.inc();
                    self.prefetch.fetch(self.fs.clone(), caller.clone(), info);
                }
                _ => {}
            }
        }
    }

    /// Whether the caller may read the file `info`. open(2) for reading
    /// needs read permission: the master signs a capability only for a
    /// caller who may read the file; without one the open is refused here
    /// (the kernel's page cache would otherwise serve another reader's
    /// pages of it). With authentication off there are no capabilities
    /// and no checks.
    fn may_read(&self, path: &str, info: &FileInfo) -> Result<(), Errno> {
        if info.capability.is_empty()
            && !info.folder
            && !self.fs.master().credentials().is_anonymous()
        {
            tracing::debug!(path, "open refused: the caller may not read the file");
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    /// A reader of the file `info`, if the caller may read it.
    fn reader_for(&self, path: &str, info: FileInfo) -> Result<FileReader, Errno> {
        self.may_read(path, &info)?;
        let reader = self
            .fs
            .reader(info, self.options.read_type)
            .map_err(|e| match e {
                AlluxioError::FailedPrecondition(_) => {
                    tracing::warn!(path, "open refused: the file is still being written");
                    Errno::EBUSY
                }
                e => self.log_error("open", path, e),
            })?;
        self.remember(reader.info(), false);
        Ok(reader)
    }

    /// A handle whose reads come to the daemon (and then stay in the
    /// kernel's page cache: a completed file never changes).
    fn daemon_handle(&self, ino: u64, reader: FileReader) -> Opened {
        self.passthrough.cached_open(ino);
        self.metrics.open_handles.inc();
        let handle = self.read_handle(reader);
        let fh = self.handles.insert(Handle::Read(Arc::new(handle)));
        Opened::Daemon { fh, reading: true }
    }

    /// A read handle, with the file's bytes if they were fetched ahead.
    fn read_handle(&self, reader: FileReader) -> ReadHandle {
        self.prefetch.first_sight(reader.info().file_id);
        match self.prefetch.take(reader.info().file_id) {
            Some(whole) => {
                self.metrics.prefetch_hits.inc();
                ReadHandle::with_contents(reader, whole)
            }
            None => ReadHandle::new(reader),
        }
    }

    /// A read of a file the kernel opened without asking (`no_open`, fh
    /// 0): the caller's right to read is checked on every read (from
    /// metadata the daemon holds, as a rule), and one reader per inode
    /// serves everyone.
    pub async fn read_unopened(&self, ino: u64, offset: u64, size: u32) -> Result<Bytes, Errno> {
        let path = self.path_of(ino)?;
        let info = self.info_at(&path).await?;
        let handle = match self.unopened.get(ino, info.file_id) {
            Some(handle) => {
                self.may_read(&path, &info)?;
                handle
            }
            // `reader_for` checks the caller's right to read.
            None => {
                let handle = Arc::new(self.read_handle(self.reader_for(&path, info)?));
                self.unopened.insert(ino, handle.clone());
                handle
            }
        };
        if offset == 0 {
            if let Some(caller) = alluxio_common::auth::acting_as() {
                self.prefetch_after(&path, caller);
            }
        }
        let data = handle
            .read(offset, u64::from(size))
            .await
            .map_err(|e| self.log_error("read", &path, e))?;
        self.metrics.bytes_read_daemon.inc_by(data.len() as u64);
        Ok(data)
    }

    fn passthrough_handle(&self, ino: u64, backing: Arc<BackingId>, len: u64) -> Opened {
        self.metrics.passthrough_opens.inc();
        self.metrics.passthrough_opened_bytes.inc_by(len);
        self.metrics.open_handles.inc();
        let fh = self.handles.insert(Handle::Passthrough { ino });
        Opened::Passthrough { fh, backing }
    }

    /// The local worker's copy of the file, checked and registered with
    /// the kernel; `None` when the file is not wholly cached here.
    async fn start_passthrough(
        &self,
        info: &alluxio_proto::grpc::FileInfo,
        reply: &ReplyOpen,
    ) -> Result<Option<(Arc<BackingId>, Arc<LocalFile>)>, String> {
        let Some(local) = self
            .fs
            .open_local_file(info)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let local = Arc::new(local);
        let result = self.register_backing(&local, reply).await;
        match result {
            Ok(backing) => Ok(Some((Arc::new(backing), local))),
            Err(e) => {
                local.close().await;
                Err(e)
            }
        }
    }

    async fn register_backing(
        &self,
        local: &Arc<LocalFile>,
        reply: &ReplyOpen,
    ) -> Result<BackingId, String> {
        let verified: Vec<u64> = local
            .blocks
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| self.passthrough.is_verified(*id))
            .collect();
        let check = local.clone();
        let checked =
            tokio::task::spawn_blocking(move || check.verify(|id| verified.contains(&id)))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        self.passthrough.mark_verified(checked);
        let file = std::fs::File::open(&local.path)
            .map_err(|e| format!("{}: {e}", local.path.display()))?;
        reply
            .open_backing(&file)
            .map_err(|e| format!("the kernel refused the backing file: {e}"))
    }

    /// Write opens: a new file replacing the old one with O_TRUNC, EPERM
    /// otherwise (Alluxio files are write-once).
    async fn open_for_write(
        &self,
        ino: u64,
        path: &str,
        flags: OpenFlags,
        uid: u32,
        gid: u32,
    ) -> Result<Opened, Errno> {
        self.refuse_if_read_only("open for writing", path)?;
        if flags.0 & libc::O_TRUNC == 0 {
            tracing::warn!(
                path,
                "open for writing refused: Alluxio files are write-once (use O_TRUNC to replace it)"
            );
            return Err(Errno::EPERM);
        }
        self.wait_for_writer(path).await;
        let old = self.info_at(path).await?;
        self.metadata.forget_tree(path);
        self.retry(|| self.fs.master().delete(path, false, false))
            .await
            .map_err(|e| self.log_error("delete", path, e))?;
        let fh = self
            .start_writer(ino, path, Some(old.mode & 0o7777), uid, gid)
            .await?;
        Ok(Opened::Daemon { fh, reading: false })
    }

    async fn start_writer(
        &self,
        ino: u64,
        path: &str,
        mode: Option<u32>,
        uid: u32,
        gid: u32,
    ) -> Result<u64, Errno> {
        self.metadata.forget_tree(path);
        let fs = self.fs_for(uid, gid);
        let options = CreateOptions {
            write_type: self.options.write_type,
            mode: mode.filter(|m| *m != 0),
            recursive: false,
        };
        let writer = self
            .retry(|| fs.create_with(path, options.clone()))
            .await
            .map_err(|e| self.log_error("create", path, e))?;
        let ino = if ino == 0 {
            self.inodes().remember(writer.info(), true).0
        } else {
            ino
        };
        self.metrics.open_handles.inc();
        Ok(self
            .handles
            .insert(Handle::Write(Arc::new(WriteHandle::new(ino, writer)))))
    }

    /// create(2) of a new file, open for writing.
    pub async fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(FileAttr, u64), Errno> {
        let path = self.child_path(parent, name)?;
        self.refuse_if_read_only("create", &path)?;
        let fh = self
            .start_writer(0, &path, Some(mode & 0o7777), uid, gid)
            .await?;
        let handle = self.handles.write(fh).ok_or(Errno::EIO)?;
        let info = self.info_at(&path).await?;
        Ok((self.attr(&info, handle.ino), fh))
    }

    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Bytes, Errno> {
        let Some(handle) = self.handles.read(fh) else {
            if self.handles.write(fh).is_some() {
                tracing::warn!("read of a file open for writing refused: it is not complete yet");
            }
            return Err(Errno::EBADF);
        };
        let data = handle
            .read(offset, u64::from(size))
            .await
            .map_err(|e| self.log_error("read", &handle.reader.info().path, e))?;
        self.metrics.bytes_read_daemon.inc_by(data.len() as u64);
        Ok(data)
    }

    pub async fn write(&self, fh: u64, offset: u64, data: Bytes) -> Result<u32, Errno> {
        let Some(handle) = self.handles.write(fh) else {
            tracing::warn!(
                "write refused: the file was opened read-only or is completed (Alluxio files are write-once)"
            );
            return Err(Errno::EBADF);
        };
        let n = data.len();
        match handle.write(offset, data).await {
            Ok(()) => {
                self.metrics.bytes_written.inc_by(n as u64);
                Ok(n as u32)
            }
            Err(e @ WriteError::NotSequential { .. }) => {
                tracing::warn!(error = %e, "write refused");
                Err(Errno::EINVAL)
            }
            Err(e @ WriteError::Closed { .. }) => {
                tracing::warn!(error = %e, "write refused");
                Err(Errno::EBADF)
            }
            Err(WriteError::Cluster(e)) => Err(self.log_error("write", &handle.path, e)),
        }
    }

    /// close(2) of one descriptor: nothing to do, the file is completed
    /// when its last descriptor is gone (release).
    pub async fn flush(&self, fh: u64) -> Result<(), Errno> {
        if self.handles.contains(fh) {
            Ok(())
        } else {
            Err(Errno::EBADF)
        }
    }

    /// fsync(2): data handed to the mount is already with the workers and
    /// the UFS stream; the file becomes durable when it is completed on
    /// close, which fsync cannot do early for a write-once file.
    pub async fn fsync(&self, fh: u64) -> Result<(), Errno> {
        if self.handles.contains(fh) {
            Ok(())
        } else {
            Err(Errno::EBADF)
        }
    }

    /// Release of a handle read through the daemon: nothing to wait for,
    /// so it is answered where the request was read. False for any other
    /// handle.
    pub fn release_reader(&self, ino: u64, fh: u64) -> bool {
        if self.handles.remove_reader(fh).is_none() {
            return false;
        }
        self.metrics.open_handles.dec();
        self.passthrough.cached_release(ino);
        true
    }

    pub async fn release(&self, ino: u64, fh: u64) {
        if let Some(w) = self.handles.write(fh) {
            // Complete before the handle goes: opens of the file wait for
            // the handle while it exists.
            match w.complete().await {
                Ok(Some(info)) => {
                    self.remember(&info, false);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = w.path, error = %e, "completing the file failed; it is removed");
                    w.abandon().await;
                }
            }
        }
        let Some(handle) = self.handles.remove(fh) else {
            return;
        };
        self.metrics.open_handles.dec();
        match handle {
            Handle::Read(_) => self.passthrough.cached_release(ino),
            Handle::Passthrough { ino } => match self.passthrough.passthrough_release(ino) {
                Some(Source::Cached(local)) => local.close().await,
                Some(Source::Ufs(Some(info))) => {
                    let metrics = self.metrics.clone();
                    self.cache_behind.cache(self.fs.clone(), info, metrics);
                }
                Some(Source::Ufs(None)) | None => {}
            },
            Handle::Write(_) | Handle::Dir(_) => {}
        }
    }

    /// Renews the leases of every passthrough file, forever.
    pub async fn renew_leases(self: Arc<Self>) {
        loop {
            tokio::time::sleep(LEASE_RENEW_INTERVAL).await;
            for local in self.passthrough.local_files() {
                if let Err(e) = local.renew().await {
                    tracing::warn!(
                        file = %local.path.display(),
                        worker = local.worker_address(),
                        error = %e,
                        "cannot renew the leases of a passthrough file"
                    );
                }
            }
        }
    }
}
