//! Caching files after the fact. A file the kernel read by passthrough
//! from its UFS object (a local-directory mount) went through no worker,
//! so nothing of it is cached; once its last handle is closed, the local
//! worker caches it (the client's `load`, one block at a time), a few
//! files at once and each file once while it is queued. The reader was
//! not slowed down, and the next open of the file finds the worker's
//! copy.

use crate::metrics::FuseMetrics;
use alluxio_client::FileSystem;
use alluxio_proto::grpc::{FileInfo, ReadType};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Files cached at once.
const PARALLEL_FILES: usize = 2;

pub struct CacheBehind {
    /// Files queued or being cached.
    queued: Mutex<HashSet<u64>>,
    slots: Arc<Semaphore>,
}

impl Default for CacheBehind {
    fn default() -> Self {
        CacheBehind {
            queued: Mutex::new(HashSet::new()),
            slots: Arc::new(Semaphore::new(PARALLEL_FILES)),
        }
    }
}

impl CacheBehind {
    /// Whether a file read by passthrough from its UFS object is cached
    /// afterwards under `read_type` (NO_CACHE: never).
    pub fn wanted(read_type: ReadType) -> bool {
        read_type != ReadType::NoCache
    }

    /// Queues the file `info` to be cached on this host's worker, unless it
    /// is queued already.
    pub fn cache(self: &Arc<Self>, fs: FileSystem, info: Arc<FileInfo>, metrics: Arc<FuseMetrics>) {
        let id = info.file_id;
        if !self.lock().insert(id) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Ok(_slot) = this.slots.clone().acquire_owned().await {
                match fs.load(&info, true, |_| {}).await {
                    Ok(bytes) => {
                        metrics.cached_behind_bytes.inc_by(bytes);
                        tracing::debug!(
                            path = info.path,
                            bytes,
                            "cached after a UFS passthrough read"
                        );
                    }
                    Err(e) => {
                        tracing::debug!(path = info.path, error = %e, "caching after a UFS passthrough read failed")
                    }
                }
            }
            this.lock().remove(&id);
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.queued.lock().unwrap_or_else(|p| p.into_inner())
    }
}
