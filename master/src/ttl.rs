//! The TTL checker: acts on files and directories whose time to live has
//! run out (free their cached blocks, delete them from Alluxio, or delete
//! them from Alluxio and the UFS).

use crate::fs_master::FileSystemMaster;
use alluxio_common::{now_ms, AlluxioPath};
use alluxio_proto::grpc::{SetAttributeRequest, TtlAction};

impl FileSystemMaster {
    /// One pass of the checker; returns the paths it acted on.
    pub async fn check_ttls(&self) -> Vec<AlluxioPath> {
        let now = now_ms();
        let expired: Vec<(AlluxioPath, u8)> = {
            let state = self.read_state();
            state
                .tree
                .iter()
                .filter(|i| i.ttl_ms >= 0 && i.creation_time_ms.saturating_add(i.ttl_ms) <= now)
                .filter_map(|i| state.tree.path_of(i.id).map(|p| (p, i.ttl_action)))
                .collect()
        };
        let mut done = Vec::new();
        for (path, action) in expired {
            let interval = self.settings.default_sync_interval_ms;
            let result = match TtlAction::try_from(action as i32).unwrap_or(TtlAction::Delete) {
                TtlAction::Free => {
                    let freed = self.free(&path, true, true).await;
                    // Free once, then forget the TTL, as Alluxio does.
                    let clear = SetAttributeRequest {
                        path: path.to_string(),
                        ttl_ms: Some(-1),
                        ..Default::default()
                    };
                    match freed {
                        Ok(_) => self.set_attribute(&clear, -1).await,
                        Err(e) => Err(e),
                    }
                }
                TtlAction::Delete => self.delete(&path, true, false, interval).await,
                TtlAction::DeleteAlluxio => self.delete(&path, true, true, interval).await,
            };
            match result {
                Ok(()) => {
                    tracing::info!(path = %path, action, "TTL expired: acted");
                    done.push(path);
                }
                // A parent may have been deleted first in this same pass.
                Err(alluxio_common::AlluxioError::NotFound(_)) => {}
                Err(e) => tracing::warn!(path = %path, error = %e, "TTL action failed"),
            }
        }
        done
    }
}
