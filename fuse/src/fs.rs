//! The `fuser::Filesystem` adapter: each kernel request is counted, handed
//! to an async operation of [`FuseState`] on the tokio runtime (so slow
//! cluster calls never block the threads reading /dev/fuse), and answered
//! from there; errors are counted by errno.

use crate::io_ops::Opened;
use crate::meta_ops::DirEntry;
use crate::state::{FuseState, KernelAttr};
use alluxio_common::auth::{acting_for, ActAs};
use bytes::Bytes;
use fuser::{
    Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig,
    LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr,
    Request, TimeOrNow,
};
use std::ffi::OsStr;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

pub struct AlluxioFuse {
    pub state: Arc<FuseState>,
    pub runtime: tokio::runtime::Handle,
}

/// Replies that can carry an errno.
trait ErrorReply: Send + 'static {
    fn fail(self, errno: Errno);
}

macro_rules! error_reply {
    ($($t:ty),*) => {$(
        impl ErrorReply for $t {
            fn fail(self, errno: Errno) {
                self.error(errno)
            }
        }
    )*};
}

error_reply!(
    ReplyAttr,
    ReplyCreate,
    ReplyData,
    ReplyDirectory,
    ReplyDirectoryPlus,
    ReplyEmpty,
    ReplyEntry,
    ReplyOpen,
    ReplyStatfs,
    ReplyWrite
);

impl AlluxioFuse {
    /// Runs `op` on the runtime; `ok` answers its result, an error is
    /// answered and counted.
    fn run<T, R, F, Fut>(
        &self,
        name: &'static str,
        req: &Request,
        reply: R,
        op: F,
        ok: fn(R, T, &FuseState),
    ) where
        T: Send + 'static,
        R: ErrorReply,
        F: FnOnce(Arc<FuseState>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Errno>> + Send + 'static,
    {
        self.state.metrics.count(name);
        let state = self.state.clone();
        // The master checks the calling process's user, not the daemon's.
        let caller = state.users.act_as(req.uid(), req.gid(), req.pid());
        self.runtime.spawn(async move {
            match acting_for(caller, op(state.clone())).await {
                Ok(value) => ok(reply, value, &state),
                Err(errno) => {
                    state.metrics.error(name, errno);
                    reply.fail(errno);
                }
            }
        });
    }

    fn refuse<R: ErrorReply>(&self, name: &'static str, reply: R, errno: Errno, why: &str) {
        self.state.metrics.count(name);
        self.state.metrics.error(name, errno);
        tracing::debug!(op = name, "{why}");
        reply.fail(errno);
    }
}

fn entry(reply: ReplyEntry, a: KernelAttr, _: &FuseState) {
    reply.entry(&a.entry_timeout, &a.attr, Generation(0));
}

fn attr(reply: ReplyAttr, a: KernelAttr, _: &FuseState) {
    reply.attr(&a.attr_timeout, &a.attr);
}

/// Completed files opened for reading keep their pages in the kernel and
/// need no flush (nothing is pending at close(2)).
fn answer_open(reply: ReplyOpen, opened: Result<Opened, Errno>, state: &FuseState) {
    match opened {
        Ok(Opened::Daemon { fh, reading }) => {
            let flags = if reading {
                FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_NOFLUSH
            } else {
                FopenFlags::empty()
            };
            reply.opened(FileHandle(fh), flags);
        }
        Ok(Opened::Passthrough { fh, backing }) => {
            reply.opened_passthrough(FileHandle(fh), FopenFlags::FOPEN_NOFLUSH, &backing);
        }
        Err(errno) => {
            state.metrics.error("open", errno);
            reply.error(errno);
        }
    }
}

fn empty(reply: ReplyEmpty, _: (), _: &FuseState) {
    reply.ok();
}

impl Filesystem for AlluxioFuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_ATOMIC_O_TRUNC
            | InitFlags::FUSE_PARALLEL_DIROPS;
        for flag in wanted.iter() {
            let _ = config.add_capabilities(flag);
        }
        let _ = config.set_max_readahead(1 << 20);
        if self.state.options.no_open {
            let granted = config
                .add_capabilities(InitFlags::FUSE_NO_OPEN_SUPPORT)
                .is_ok();
            self.state.kernel_no_open.store(granted, Ordering::Relaxed);
            if !granted {
                tracing::warn!("the kernel does not offer opens without the daemon (no_open); every open asks the daemon");
            }
        }
        if self.state.options.passthrough && !self.state.kernel_no_open.load(Ordering::Relaxed) {
            let granted = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                && config.set_max_stack_depth(2).is_ok();
            self.state
                .kernel_passthrough
                .store(granted, Ordering::Relaxed);
            if !granted {
                tracing::warn!("the kernel does not offer FUSE passthrough (Linux 6.9+); every read goes through the daemon");
            }
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name.to_owned();
        self.run(
            "lookup",
            req,
            reply,
            move |s| async move { s.lookup(parent.0, &name).await },
            entry,
        );
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.state.inodes().forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.run(
            "getattr",
            req,
            reply,
            move |s| async move { s.getattr(ino.0).await },
            attr,
        );
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.run(
            "setattr",
            req,
            reply,
            move |s| async move { s.setattr(ino.0, mode, uid, gid, size).await },
            attr,
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let (name, uid, gid) = (name.to_owned(), req.uid(), req.gid());
        self.run(
            "mkdir",
            req,
            reply,
            move |s| async move { s.mkdir(parent.0, &name, mode & !umask, uid, gid).await },
            entry,
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.run(
            "unlink",
            req,
            reply,
            move |s| async move { s.unlink(parent.0, &name).await },
            empty,
        );
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.run(
            "rmdir",
            req,
            reply,
            move |s| async move { s.rmdir(parent.0, &name).await },
            empty,
        );
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        self.refuse(
            "symlink",
            reply,
            Errno::EOPNOTSUPP,
            "Alluxio has no symbolic links",
        );
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.refuse(
            "link",
            reply,
            Errno::EOPNOTSUPP,
            "Alluxio has no hard links",
        );
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        self.refuse(
            "mknod",
            reply,
            Errno::EOPNOTSUPP,
            "Alluxio has no special files",
        );
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.bits() & !libc::RENAME_NOREPLACE != 0 {
            return self.refuse("rename", reply, Errno::EINVAL, "RENAME_EXCHANGE/WHITEOUT");
        }
        let no_replace = flags.bits() & libc::RENAME_NOREPLACE != 0;
        let (name, newname) = (name.to_owned(), newname.to_owned());
        self.run(
            "rename",
            req,
            reply,
            move |s| async move {
                s.rename(parent.0, &name, newparent.0, &newname, no_replace)
                    .await
            },
            empty,
        );
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.state.metrics.count("open");
        let state = self.state.clone();
        if state.kernel_no_open.load(Ordering::Relaxed) {
            // The kernel takes ENOSYS as "open without me from now on";
            // this open succeeds too. The mount is read-only, so the
            // kernel refuses write opens itself.
            return reply.error(Errno::ENOSYS);
        }
        let (uid, gid) = (req.uid(), req.gid());
        // Answered here when the daemon holds what it needs (no task, no
        // call); inside the runtime for what it starts (prefetches).
        let fast = {
            let _runtime = self.runtime.enter();
            state.open_from_cache(ino.0, flags, || ActAs {
                user: state.users.user_name(uid),
                groups: vec![state.users.group_name(gid)],
            })
        };
        if let Some(opened) = fast {
            return answer_open(reply, opened, &state);
        }
        // As every other operation: the master checks the calling process.
        let caller = state.users.act_as(uid, gid, req.pid());
        self.runtime.spawn(async move {
            let opened = acting_for(caller, state.open(ino.0, flags, uid, gid, &reply)).await;
            answer_open(reply, opened, &state);
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let (name, uid, gid) = (name.to_owned(), req.uid(), req.gid());
        self.run(
            "create",
            req,
            reply,
            move |s| async move { s.create(parent.0, &name, mode & !umask, uid, gid).await },
            |reply, (attr, fh), s| {
                reply.created(
                    &s.options.entry_timeout,
                    &attr,
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::empty(),
                )
            },
        );
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        if fh.0 == 0 && self.state.kernel_no_open.load(Ordering::Relaxed) {
            return self.run(
                "read",
                req,
                reply,
                move |s| async move { s.read_unopened(ino.0, offset, size).await },
                |reply, data, _| reply.data(&data),
            );
        }
        self.run(
            "read",
            req,
            reply,
            move |s| async move { s.read(fh.0, offset, size).await },
            |reply, data, _| reply.data(&data),
        );
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = Bytes::copy_from_slice(data);
        self.run(
            "write",
            req,
            reply,
            move |s| async move { s.write(fh.0, offset, data).await },
            |reply, n, _| reply.written(n),
        );
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        if self.state.options.read_only {
            // Nothing is ever pending on a read-only mount: ENOSYS tells
            // the kernel to stop sending flushes at every close(2).
            self.state.metrics.count("flush");
            return reply.error(Errno::ENOSYS);
        }
        self.run(
            "flush",
            req,
            reply,
            move |s| async move { s.flush(fh.0).await },
            empty,
        );
    }

    fn release(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if self.state.release_reader(ino.0, fh.0) {
            self.state.metrics.count("release");
            return reply.ok();
        }
        self.run(
            "release",
            req,
            reply,
            move |s| async move {
                s.release(ino.0, fh.0).await;
                Ok(())
            },
            empty,
        );
    }

    fn fsync(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.run(
            "fsync",
            req,
            reply,
            move |s| async move { s.fsync(fh.0).await },
            empty,
        );
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.run(
            "opendir",
            req,
            reply,
            move |s| async move { s.opendir(ino.0).await },
            |reply, fh, s| {
                // Read-only mounts: the kernel keeps the listing across
                // opens and drops it when the directory's modification
                // time changes (as the daemon reports it, within the
                // attribute timeouts): a repeated `ls -l` asks nothing.
                let flags = if s.options.read_only {
                    FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE
                } else {
                    FopenFlags::empty()
                };
                reply.opened(FileHandle(fh), flags)
            },
        );
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.run(
            "readdir",
            req,
            reply,
            move |s| async move { s.readdir(ino.0, fh.0, offset, false).await },
            |mut reply, entries: Vec<DirEntry>, _| {
                for e in entries {
                    if reply.add(INodeNo(e.ino), e.next_offset, e.kind, &e.name) {
                        break;
                    }
                }
                reply.ok();
            },
        );
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.run(
            "readdirplus",
            req,
            reply,
            move |s| async move { s.readdir(ino.0, fh.0, offset, true).await },
            |mut reply, entries: Vec<DirEntry>, s| {
                for e in entries {
                    let Some(info) = e.info else { break };
                    let dot = e.name == "." || e.name == "..";
                    let attr = s.attr(&info, e.ino);
                    let (timeout, _) = s.kernel_timeouts(&info);
                    if reply.add(
                        INodeNo(e.ino),
                        e.next_offset,
                        &e.name,
                        &timeout,
                        &attr,
                        Generation(0),
                    ) {
                        break;
                    }
                    // The kernel takes a reference to every entry it
                    // accepts, except "." and "..".
                    if !dot {
                        s.remember(&info, true);
                    }
                }
                reply.ok();
            },
        );
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.state.metrics.count("releasedir");
        self.state.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.run(
            "statfs",
            req,
            reply,
            |s| async move { s.statfs().await },
            |reply, st, _| {
                reply.statfs(
                    st.blocks,
                    st.free,
                    st.free,
                    u64::from(u32::MAX),
                    u64::from(u32::MAX),
                    st.block_size,
                    255,
                    st.block_size,
                )
            },
        );
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        // ENOSYS: the kernel answers EOPNOTSUPP itself from then on
        // (`ls -l` asks for ACLs of every file it lists).
        self.state.metrics.count("getxattr");
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        self.state.metrics.count("listxattr");
        reply.error(Errno::ENOSYS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        self.refuse(
            "setxattr",
            reply,
            Errno::EOPNOTSUPP,
            "extended attributes are not supported",
        );
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        self.refuse(
            "removexattr",
            reply,
            Errno::EOPNOTSUPP,
            "extended attributes are not supported",
        );
    }
}
