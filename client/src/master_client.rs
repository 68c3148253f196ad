//! Typed client of the master's three gRPC services. Every method returns
//! [`AlluxioError`], so callers match on kinds rather than status codes.

use alluxio_common::auth::{AuthChannel, Credentials};
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::block_master_client::BlockMasterClient;
use alluxio_proto::grpc::file_system_master_client::FileSystemMasterClient;
use alluxio_proto::grpc::meta_master_client::MetaMasterClient;
use alluxio_proto::grpc::*;
use futures::StreamExt;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// `message` as a request with this process's per-call deadline (see
/// `alluxio_common::rpc`), which the server also receives as
/// `grpc-timeout`. Every unary call carries one; only block streams do
/// not (they last as long as their reader or writer takes).
pub(crate) fn deadline<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(alluxio_common::rpc::call_timeout());
    request
}

/// Every call carries the client's credentials (see `alluxio_common::auth`).
#[derive(Clone)]
pub struct MasterClient {
    address: String,
    credentials: Credentials,
    fs: FileSystemMasterClient<AuthChannel>,
    block: BlockMasterClient<AuthChannel>,
    meta: MetaMasterClient<AuthChannel>,
}

fn master_endpoint(address: &str) -> Result<Endpoint> {
    alluxio_common::rpc::endpoint(address)
        .map_err(|e| AlluxioError::InvalidArgument(format!("master: {e}")))
}

impl MasterClient {
    /// Connects to `host:port` as `credentials`, retrying until `timeout`
    /// passes.
    pub async fn connect(
        address: &str,
        timeout: Duration,
        credentials: Credentials,
    ) -> Result<MasterClient> {
        let endpoint = master_endpoint(address)?;
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(50);
        let channel = loop {
            match endpoint.connect().await {
                Ok(channel) => break channel,
                Err(e) if Instant::now() >= deadline => {
                    return Err(AlluxioError::Unavailable(format!(
                        "cannot reach the Alluxio master at {address}: {e}"
                    )));
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        };
        Ok(Self::over(address, channel, credentials))
    }

    /// A client that connects on first use and reconnects after failures
    /// (for long-running processes such as workers).
    pub fn connect_lazy(address: &str, credentials: Credentials) -> Result<MasterClient> {
        let channel = master_endpoint(address)?.connect_lazy();
        Ok(Self::over(address, channel, credentials))
    }

    fn over(address: &str, channel: Channel, credentials: Credentials) -> MasterClient {
        let channel = credentials.attach(channel);
        MasterClient {
            address: address.to_string(),
            fs: FileSystemMasterClient::new(channel.clone())
                .max_decoding_message_size(alluxio_common::rpc::MASTER_MAX_MESSAGE),
            block: BlockMasterClient::new(channel.clone()),
            meta: MetaMasterClient::new(channel),
            credentials,
        }
    }

    /// Who this client calls as (workers are called as the same).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub async fn create_file(&self, req: CreateFileRequest) -> Result<FileInfo> {
        let r = self.fs.clone().create_file(deadline(req)).await?;
        Ok(r.into_inner().file_info.unwrap_or_default())
    }

    pub async fn complete_file(&self, req: CompleteFileRequest) -> Result<FileInfo> {
        let r = self.fs.clone().complete_file(deadline(req)).await?;
        Ok(r.into_inner().file_info.unwrap_or_default())
    }

    pub async fn create_directory(&self, req: CreateDirectoryRequest) -> Result<FileInfo> {
        let r = self.fs.clone().create_directory(deadline(req)).await?;
        Ok(r.into_inner().file_info.unwrap_or_default())
    }

    pub async fn get_status(&self, path: &str, sync_interval_ms: Option<i64>) -> Result<FileInfo> {
        let req = GetStatusRequest {
            path: path.to_string(),
            common: Some(FileSystemMasterCommonOptions { sync_interval_ms }),
        };
        let r = self.fs.clone().get_status(deadline(req)).await?;
        Ok(r.into_inner().file_info.unwrap_or_default())
    }

    /// Every entry of a (possibly streamed) listing.
    pub async fn list_status(
        &self,
        path: &str,
        recursive: bool,
        sync_interval_ms: Option<i64>,
    ) -> Result<Vec<FileInfo>> {
        let mut batches = self
            .list_status_batches(path, recursive, sync_interval_ms)
            .await?;
        let mut out = Vec::new();
        while let Some(batch) = batches.next().await {
            out.extend(batch?);
        }
        Ok(out)
    }

    /// A listing as the master streams it, batch by batch (for callers
    /// that start using a large directory before all of it has arrived).
    pub async fn list_status_batches(
        &self,
        path: &str,
        recursive: bool,
        sync_interval_ms: Option<i64>,
    ) -> Result<futures::stream::BoxStream<'static, Result<Vec<FileInfo>>>> {
        let req = ListStatusRequest {
            path: path.to_string(),
            recursive,
            common: Some(FileSystemMasterCommonOptions { sync_interval_ms }),
        };
        let stream = self
            .fs
            .clone()
            .list_status(deadline(req))
            .await?
            .into_inner();
        Ok(stream
            .map(|batch| batch.map(|b| b.file_infos).map_err(AlluxioError::from))
            .boxed())
    }

    pub async fn delete(&self, path: &str, recursive: bool, alluxio_only: bool) -> Result<()> {
        let req = DeleteRequest {
            path: path.to_string(),
            recursive,
            alluxio_only,
            common: None,
        };
        self.fs.clone().delete(deadline(req)).await?;
        Ok(())
    }

    pub async fn rename(&self, src: &str, dst: &str) -> Result<()> {
        let req = RenameRequest {
            src: src.to_string(),
            dst: dst.to_string(),
            common: None,
        };
        self.fs.clone().rename(deadline(req)).await?;
        Ok(())
    }

    pub async fn set_attribute(&self, req: SetAttributeRequest) -> Result<()> {
        self.fs.clone().set_attribute(deadline(req)).await?;
        Ok(())
    }

    pub async fn free(&self, path: &str, recursive: bool, forced: bool) -> Result<u64> {
        let req = FreeRequest {
            path: path.to_string(),
            recursive,
            forced,
        };
        Ok(self
            .fs
            .clone()
            .free(deadline(req))
            .await?
            .into_inner()
            .blocks_freed)
    }

    pub async fn mount(&self, req: MountRequest) -> Result<MountPointInfo> {
        let r = self.fs.clone().mount(deadline(req)).await?;
        Ok(r.into_inner().mount.unwrap_or_default())
    }

    pub async fn unmount(&self, path: &str) -> Result<()> {
        let req = UnmountRequest {
            alluxio_path: path.to_string(),
        };
        self.fs.clone().unmount(deadline(req)).await?;
        Ok(())
    }

    pub async fn update_mount(&self, req: UpdateMountRequest) -> Result<MountPointInfo> {
        let r = self.fs.clone().update_mount(deadline(req)).await?;
        Ok(r.into_inner().mount.unwrap_or_default())
    }

    pub async fn mount_table(&self) -> Result<Vec<MountPointInfo>> {
        let r = self
            .fs
            .clone()
            .get_mount_table(deadline(GetMountTableRequest {}))
            .await?;
        Ok(r.into_inner().mounts)
    }

    pub async fn ufs_info(&self, mount_id: u64) -> Result<GetUfsInfoResponse> {
        let r = self
            .fs
            .clone()
            .get_ufs_info(deadline(GetUfsInfoRequest { mount_id }))
            .await?;
        Ok(r.into_inner())
    }

    pub async fn commit_persisted(&self, file_id: u64, ufs_mtime_ms: i64) -> Result<()> {
        self.fs
            .clone()
            .commit_persisted(deadline(CommitPersistedRequest {
                file_id,
                ufs_mtime_ms,
            }))
            .await?;
        Ok(())
    }

    pub async fn master_info(&self) -> Result<GetMasterInfoResponse> {
        Ok(self
            .meta
            .clone()
            .get_master_info(deadline(GetMasterInfoRequest {}))
            .await?
            .into_inner())
    }

    pub async fn ping(&self) -> Result<()> {
        self.meta.clone().ping(deadline(PingRequest {})).await?;
        Ok(())
    }

    pub async fn worker_infos(&self) -> Result<Vec<WorkerInfo>> {
        let r = self
            .block
            .clone()
            .get_worker_info_list(deadline(GetWorkerInfoListRequest {}))
            .await?;
        Ok(r.into_inner().workers)
    }

    /// Where a block lies, as the master knows it (workers only).
    pub async fn block_layout(&self, block_id: u64) -> Result<GetBlockLayoutResponse> {
        Ok(self
            .block
            .clone()
            .get_block_layout(deadline(GetBlockLayoutRequest { block_id }))
            .await?
            .into_inner())
    }

    pub async fn register_worker(&self, req: RegisterWorkerRequest) -> Result<()> {
        self.block.clone().register_worker(deadline(req)).await?;
        Ok(())
    }

    pub async fn worker_heartbeat(
        &self,
        req: WorkerHeartbeatRequest,
    ) -> Result<WorkerHeartbeatResponse> {
        Ok(self
            .block
            .clone()
            .worker_heartbeat(deadline(req))
            .await?
            .into_inner())
    }

    pub async fn commit_block(&self, req: CommitBlockRequest) -> Result<()> {
        self.block.clone().commit_block(deadline(req)).await?;
        Ok(())
    }
}
