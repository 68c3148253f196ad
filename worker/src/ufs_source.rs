//! UFS clients for read-through, built from the master's `GetUfsInfo` (the
//! mount's real options) and kept for a short while, so that an
//! `updateMount` (new credentials) takes effect without a restart.

use alluxio_client::MasterClient;
use alluxio_common::{AlluxioError, Result};
use alluxio_ufs::UnderFileSystem;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REFRESH_AFTER: Duration = Duration::from_secs(30);

struct Cached {
    fetched: Instant,
    ufs: Arc<dyn UnderFileSystem>,
    uri: String,
}

pub struct UfsSource {
    master: MasterClient,
    mounts: Mutex<HashMap<u64, Cached>>,
}

impl UfsSource {
    pub fn new(master: MasterClient) -> Self {
        UfsSource {
            master,
            mounts: Mutex::new(HashMap::new()),
        }
    }

    /// The UFS of `mount_id` and the path of `ufs_path` inside it.
    pub async fn resolve(
        &self,
        mount_id: u64,
        ufs_path: &str,
    ) -> Result<(Arc<dyn UnderFileSystem>, String)> {
        let cached = {
            let mounts = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
            mounts
                .get(&mount_id)
                .filter(|c| c.fetched.elapsed() < REFRESH_AFTER)
                .map(|c| (c.ufs.clone(), c.uri.clone()))
        };
        let (ufs, uri) = match cached {
            Some(found) => found,
            None => {
                let info = self.master.ufs_info(mount_id).await?;
                let ufs =
                    alluxio_ufs::create_ufs(&info.ufs_uri, &info.options.into_iter().collect())?;
                let mut mounts = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
                mounts.insert(
                    mount_id,
                    Cached {
                        fetched: Instant::now(),
                        ufs: ufs.clone(),
                        uri: info.ufs_uri.clone(),
                    },
                );
                (ufs, info.ufs_uri)
            }
        };
        let relative = relative_path(ufs_path, &uri)?;
        Ok((ufs, relative))
    }
}

/// `ufs_path` relative to the mount's URI.
pub fn relative_path(ufs_path: &str, mount_uri: &str) -> Result<String> {
    let base = mount_uri.trim_end_matches('/');
    match ufs_path.strip_prefix(base) {
        Some("") => Ok(String::new()),
        Some(rest) if rest.starts_with('/') => Ok(rest.trim_start_matches('/').to_string()),
        _ => Err(AlluxioError::InvalidArgument(format!(
            "{ufs_path} is not inside the mount {mount_uri}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn relative_paths() {
        assert_eq!(
            super::relative_path("s3://b/p/x/y", "s3://b/p").unwrap(),
            "x/y"
        );
        assert_eq!(super::relative_path("s3://b/p", "s3://b/p/").unwrap(), "");
        assert!(super::relative_path("s3://b/px/y", "s3://b/p").is_err());
    }
}
