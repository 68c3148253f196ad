//! The client core: what the [`crate::FileSystem`] facade, its readers and
//! its writers share — the master client, the worker pool, the cached
//! live-worker list and mount resolver, and the client's settings. Cheap to clone (everything
//! heavy is behind an `Arc`).

use crate::live_workers::LiveWorkers;
use crate::mounts::MountResolver;
use crate::workers::WorkerPool;
use crate::MasterClient;
use alluxio_common::config::{AlluxioConfig, ReadTypeConfig, WriteTypeConfig};
use alluxio_common::Result;
use alluxio_proto::grpc::{FileInfo, ReadType, WorkerInfo, WriteType};
use alluxio_ufs::UnderFileSystem;
use std::sync::Arc;

/// The client's settings (`user.*` in the configuration).
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Owner and group recorded on new files and directories.
    pub user: String,
    pub group: String,
    pub block_size: u64,
    pub write_type: WriteType,
    pub read_type: ReadType,
    pub short_circuit: bool,
    /// Read cached blocks of other workers over their raw TCP data port.
    pub data_port_reads: bool,
}

impl ClientSettings {
    pub fn from_config(config: &AlluxioConfig) -> Self {
        // What the master records when it lets the caller name the owner
        // (NOSASL, proxies); otherwise it records the token's user.
        let me = alluxio_common::users::current_user();
        let u = &config.user;
        ClientSettings {
            user: me.name,
            group: me.group,
            block_size: u.block_size.0,
            write_type: match u.write_type {
                WriteTypeConfig::MustCache => WriteType::MustCache,
                WriteTypeConfig::CacheThrough => WriteType::CacheThrough,
                WriteTypeConfig::Through => WriteType::Through,
                WriteTypeConfig::AsyncThrough => WriteType::AsyncThrough,
            },
            read_type: match u.read_type {
                ReadTypeConfig::Cache => ReadType::Cache,
                ReadTypeConfig::CachePromote => ReadType::CachePromote,
                ReadTypeConfig::NoCache => ReadType::NoCache,
            },
            short_circuit: u.short_circuit,
            data_port_reads: u.data_port_reads,
        }
    }
}

#[derive(Clone)]
pub struct ClientCore {
    pub master: MasterClient,
    pub workers: Arc<WorkerPool>,
    pub live: Arc<LiveWorkers>,
    pub mounts: Arc<MountResolver>,
    pub settings: ClientSettings,
}

impl ClientCore {
    pub fn new(master: MasterClient, config: &AlluxioConfig) -> Self {
        let u = &config.user;
        ClientCore {
            workers: Arc::new(WorkerPool::new(
                u.location_policy,
                u.hostname.clone(),
                master.credentials().clone(),
            )),
            live: Arc::new(LiveWorkers::new(master.clone(), u.worker_list_refresh.0)),
            mounts: Arc::new(MountResolver::new(master.clone())),
            settings: ClientSettings::from_config(config),
            master,
        }
    }

    /// The workers the master knows (cached: see [`LiveWorkers`]).
    pub async fn live_workers(&self) -> Arc<Vec<WorkerInfo>> {
        self.live.get().await
    }

    /// The UFS of a file and the file's path inside it.
    pub async fn ufs_for(&self, info: &FileInfo) -> Result<(Arc<dyn UnderFileSystem>, String)> {
        self.mounts.resolve(info.mount_id, &info.ufs_path).await
    }
}
