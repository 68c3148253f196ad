//! Which mode each open inode is in, and the local copies behind
//! passthrough opens.
//!
//! The kernel puts an inode either in passthrough mode (every open file of
//! it reads one backing file) or in cached mode (reads come to the daemon);
//! an open in the other mode fails with EIO. So passthrough starts only on
//! an inode with no other open files, every later open reuses its backing
//! id, and opens through the daemon are counted so passthrough is not tried
//! while any is left. The local copy's blocks are checked against their
//! checksums once per daemon (the kernel reads them unchecked afterwards),
//! and their leases are renewed while the file stays open. A file not
//! cached here may be passed through to its UFS object instead (a
//! local-directory mount), and is cached after its last close.

use alluxio_client::LocalFile;
use alluxio_proto::grpc::FileInfo;
use fuser::BackingId;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct InodeOpens {
    /// Open handles served by the daemon.
    cached: usize,
    passthrough: Option<PassthroughFile>,
}

/// What the kernel reads for a passthrough inode.
#[derive(Clone)]
pub enum Source {
    /// The local worker's copy (leased).
    Cached(Arc<LocalFile>),
    /// The file's UFS object; with the file's metadata when it is to be
    /// cached after the last close (not under NO_CACHE).
    Ufs(Option<Arc<FileInfo>>),
}

struct PassthroughFile {
    backing: Arc<BackingId>,
    source: Source,
    opens: usize,
}

#[derive(Default)]
pub struct Passthrough {
    inodes: Mutex<HashMap<u64, InodeOpens>>,
    verified: Mutex<HashSet<u64>>,
    /// Serialises the first passthrough open of inodes, so two opens of
    /// one inode cannot both set it up.
    pub setup: tokio::sync::Mutex<()>,
}

impl Passthrough {
    /// The backing id of an inode already in passthrough mode (counting
    /// one more open of it).
    pub fn reuse(&self, ino: u64) -> Option<Arc<BackingId>> {
        let mut inodes = self.lock();
        let p = inodes.get_mut(&ino)?.passthrough.as_mut()?;
        p.opens += 1;
        Some(p.backing.clone())
    }

    /// Whether passthrough may start on `ino`: nothing of it is open.
    pub fn can_start(&self, ino: u64) -> bool {
        self.lock()
            .get(&ino)
            .is_none_or(|o| o.cached == 0 && o.passthrough.is_none())
    }

    pub fn started(&self, ino: u64, backing: Arc<BackingId>, source: Source) {
        self.lock().entry(ino).or_default().passthrough = Some(PassthroughFile {
            backing,
            source,
            opens: 1,
        });
    }

    /// One more handle of `ino` served by the daemon.
    pub fn cached_open(&self, ino: u64) {
        self.lock().entry(ino).or_default().cached += 1;
    }

    pub fn cached_release(&self, ino: u64) {
        let mut inodes = self.lock();
        if let Some(o) = inodes.get_mut(&ino) {
            o.cached = o.cached.saturating_sub(1);
            if o.cached == 0 && o.passthrough.is_none() {
                inodes.remove(&ino);
            }
        }
    }

    /// A passthrough handle of `ino` was released. After the last one the
    /// backing id is closed and its source returned (a local copy's
    /// leases to give back, a UFS object's file to cache).
    pub fn passthrough_release(&self, ino: u64) -> Option<Source> {
        let mut inodes = self.lock();
        let o = inodes.get_mut(&ino)?;
        let p = o.passthrough.as_mut()?;
        p.opens = p.opens.saturating_sub(1);
        if p.opens > 0 {
            return None;
        }
        let p = o.passthrough.take()?;
        if o.cached == 0 {
            inodes.remove(&ino);
        }
        drop(p.backing);
        Some(p.source)
    }

    /// Local copies in use (for lease renewal).
    pub fn local_files(&self) -> Vec<Arc<LocalFile>> {
        self.lock()
            .values()
            .filter_map(|o| match &o.passthrough.as_ref()?.source {
                Source::Cached(local) => Some(local.clone()),
                Source::Ufs(_) => None,
            })
            .collect()
    }

    pub fn is_verified(&self, block_id: u64) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&block_id)
    }

    pub fn mark_verified(&self, blocks: impl IntoIterator<Item = u64>) {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(blocks);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, InodeOpens>> {
        self.inodes.lock().unwrap_or_else(|p| p.into_inner())
    }
}
