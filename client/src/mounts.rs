//! UFS clients per mount, built from the master's `GetUfsInfo` (the mount's
//! real options) and kept for a short while, so that the UFS of a mount is
//! not rebuilt for every fallback read while an `updateMount` (new
//! credentials) still takes effect without a restart. Shared by clients
//! (UFS fallbacks, writes through) and workers (read-through, persists).

use crate::MasterClient;
use alluxio_common::Result;
use alluxio_ufs::UnderFileSystem;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a mount's UFS client is used before its options are fetched again.
const REFRESH_AFTER: Duration = Duration::from_secs(30);

struct Cached {
    fetched: Instant,
    ufs: Arc<dyn UnderFileSystem>,
    uri: String,
    /// The master left the mount's credentials out (for a client).
    secrets_withheld: bool,
}

pub struct MountResolver {
    master: MasterClient,
    mounts: Mutex<HashMap<u64, Cached>>,
}

impl MountResolver {
    pub fn new(master: MasterClient) -> Self {
        MountResolver {
            master,
            mounts: Mutex::new(HashMap::new()),
        }
    }

    /// The UFS of `mount_id` and the path of `ufs_path` inside it
    /// (refused when it is not inside the mount: see
    /// [`alluxio_ufs::path_in_mount`]).
    pub async fn resolve(
        &self,
        mount_id: u64,
        ufs_path: &str,
    ) -> Result<(Arc<dyn UnderFileSystem>, String)> {
        let (ufs, uri, _) = self.mount(mount_id).await?;
        let relative = alluxio_ufs::path_in_mount(ufs_path, &uri)?;
        Ok((ufs, relative))
    }

    /// Whether this process got mount `mount_id` without its credentials
    /// (a client: its reads of the UFS go through signed URLs).
    pub async fn secrets_withheld(&self, mount_id: u64) -> Result<bool> {
        Ok(self.mount(mount_id).await?.2)
    }

    async fn mount(&self, mount_id: u64) -> Result<(Arc<dyn UnderFileSystem>, String, bool)> {
        let cached = {
            let mounts = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
            mounts
                .get(&mount_id)
                .filter(|c| c.fetched.elapsed() < REFRESH_AFTER)
                .map(|c| (c.ufs.clone(), c.uri.clone(), c.secrets_withheld))
        };
        if let Some(found) = cached {
            return Ok(found);
        }
        let info = self.master.ufs_info(mount_id).await?;
        let ufs = alluxio_ufs::create_ufs(&info.ufs_uri, &info.options.into_iter().collect())?;
        let mut mounts = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
        mounts.insert(
            mount_id,
            Cached {
                fetched: Instant::now(),
                ufs: ufs.clone(),
                uri: info.ufs_uri.clone(),
                secrets_withheld: info.secrets_withheld,
            },
        );
        Ok((ufs, info.ufs_uri, info.secrets_withheld))
    }

    /// Forgets the UFS client of `mount_id`, after an operation on it failed
    /// (the mount may have been updated or replaced).
    pub fn invalidate(&self, mount_id: u64) {
        let mut mounts = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
        mounts.remove(&mount_id);
    }
}
