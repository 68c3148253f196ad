//! Typed client of the master's gRPC services. Every method returns
//! [`AlluxioError`], so callers match on kinds rather than status codes.
//!
//! A client may know several masters (a fault-tolerant cluster: the
//! address is `h1:19998,h2:19998,h3:19998`). It talks to the one it
//! believes is the leader; when that one answers `Unavailable` (it is not
//! the leader, or it is gone) the client follows the leader named in the
//! refusal, or tries the next master, until the call succeeds or
//! `user.rpc_retry_timeout` passes. A follower refuses before it does
//! anything, so retrying a refused write is safe; a write whose master died
//! mid-call may have been applied, as with any timeout.

use alluxio_common::auth::{AuthChannel, Credentials};
use alluxio_common::rpc::LEADER_HEADER;
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::block_master_client::BlockMasterClient;
use alluxio_proto::grpc::file_system_master_client::FileSystemMasterClient;
use alluxio_proto::grpc::job_master_client::JobMasterClient;
use alluxio_proto::grpc::meta_master_client::MetaMasterClient;
use alluxio_proto::grpc::*;
use futures::StreamExt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

/// `message` as a request with this process's per-call deadline (see
/// `alluxio_common::rpc`), which the server also receives as
/// `grpc-timeout`. Every unary call carries one; only block streams do
/// not (they last as long as their reader or writer takes).
pub(crate) fn deadline<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(alluxio_common::rpc::call_timeout());
    request
}

/// The service clients of one master.
#[derive(Clone)]
struct Conn {
    fs: FileSystemMasterClient<AuthChannel>,
    block: BlockMasterClient<AuthChannel>,
    meta: MetaMasterClient<AuthChannel>,
    job: JobMasterClient<AuthChannel>,
}

impl Conn {
    fn over(channel: Channel, credentials: &Credentials) -> Conn {
        let channel = credentials.attach(channel);
        Conn {
            fs: FileSystemMasterClient::new(channel.clone())
                .max_decoding_message_size(alluxio_common::rpc::MASTER_MAX_MESSAGE),
            block: BlockMasterClient::new(channel.clone()),
            job: JobMasterClient::new(channel.clone()),
            meta: MetaMasterClient::new(channel),
        }
    }
}

struct Masters {
    addresses: Vec<String>,
    conns: Vec<Conn>,
    /// Index of the master calls go to first.
    current: AtomicUsize,
    /// The last leader reached by a hint from outside `addresses`; calls go
    /// there first while it answers.
    hinted: std::sync::Mutex<Option<Conn>>,
}

/// Every call carries the client's credentials (see `alluxio_common::auth`).
#[derive(Clone)]
pub struct MasterClient {
    masters: Arc<Masters>,
    credentials: Credentials,
}

fn master_endpoint(address: &str) -> Result<Endpoint> {
    alluxio_common::rpc::endpoint(address)
        .map_err(|e| AlluxioError::InvalidArgument(format!("master: {e}")))
}

/// The masters named by `address`: `host:port`, or several separated by
/// commas, optionally as `alluxio://h1:19998,h2:19998/`.
pub fn parse_master_addresses(address: &str) -> Result<Vec<String>> {
    let list = address.trim().trim_start_matches("alluxio://");
    let list = list.split('/').next().unwrap_or_default();
    let addresses: Vec<String> = list
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    if addresses.is_empty() {
        return Err(AlluxioError::InvalidArgument(format!(
            "no master address in {address:?}"
        )));
    }
    Ok(addresses)
}

impl MasterClient {
    /// Connects to the master(s) at `address` as `credentials`, retrying
    /// until `timeout` passes (until one of several answers).
    pub async fn connect(
        address: &str,
        timeout: Duration,
        credentials: Credentials,
    ) -> Result<MasterClient> {
        let addresses = parse_master_addresses(address)?;
        let endpoints: Vec<Endpoint> = addresses
            .iter()
            .map(|a| master_endpoint(a))
            .collect::<Result<_>>()?;
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(50);
        let (first, channel) = 'found: loop {
            let mut last_error = None;
            for (i, endpoint) in endpoints.iter().enumerate() {
                match alluxio_common::rpc::connect(endpoint, credentials.tls()).await {
                    Ok(channel) => break 'found (i, channel),
                    Err(e) => last_error = Some(e),
                }
            }
            if Instant::now() >= deadline {
                return Err(AlluxioError::Unavailable(format!(
                    "cannot reach the Alluxio master at {address}: {}",
                    last_error
                        .map(|e| alluxio_common::error::error_chain(&e))
                        .unwrap_or_default()
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        };
        let mut channel = Some(channel);
        let channels = endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| match (i == first, channel.take()) {
                (true, Some(c)) => c,
                (_, c) => {
                    channel = c;
                    alluxio_common::rpc::connect_lazy(e, credentials.tls())
                }
            })
            .collect();
        Ok(Self::over(addresses, channels, first, credentials))
    }

    /// A client that connects on first use and reconnects after failures
    /// (for long-running processes such as workers).
    pub fn connect_lazy(address: &str, credentials: Credentials) -> Result<MasterClient> {
        let addresses = parse_master_addresses(address)?;
        let channels = addresses
            .iter()
            .map(|a| {
                master_endpoint(a).map(|e| alluxio_common::rpc::connect_lazy(&e, credentials.tls()))
            })
            .collect::<Result<_>>()?;
        Ok(Self::over(addresses, channels, 0, credentials))
    }

    fn over(
        addresses: Vec<String>,
        channels: Vec<Channel>,
        first: usize,
        credentials: Credentials,
    ) -> MasterClient {
        let conns = channels
            .into_iter()
            .map(|c| Conn::over(c, &credentials))
            .collect();
        MasterClient {
            masters: Arc::new(Masters {
                addresses,
                conns,
                current: AtomicUsize::new(first),
                hinted: std::sync::Mutex::new(None),
            }),
            credentials,
        }
    }

    /// Who this client calls as (workers are called as the same).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The master calls go to now.
    pub fn address(&self) -> &str {
        let m = &self.masters;
        &m.addresses[m.current.load(Ordering::Relaxed) % m.addresses.len()]
    }

    /// Every master this client knows.
    pub fn addresses(&self) -> &[String] {
        &self.masters.addresses
    }

    /// Runs `call` against the leader, following NotLeader hints and
    /// trying the other masters while they are unavailable. A hint may name
    /// a master outside the list (a client given only a Service address):
    /// it is dialled as well, once per call. A single address without a
    /// hint fails at once, as it always has.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let m = &self.masters;
        let n = m.conns.len();
        let deadline = Instant::now() + alluxio_common::rpc::failover_timeout();
        let mut delay = Duration::from_millis(10);
        let mut tried_without_hint = 0;
        // A hinted leader outside the list while it is tried, and the ones
        // already tried in this call (a hint the client cannot reach, say a
        // pod name it cannot resolve, must not be followed in a loop).
        let hinted = || m.hinted.lock().unwrap_or_else(|p| p.into_inner());
        let mut outside: Option<Conn> = hinted().clone();
        let mut dialled: Vec<String> = Vec::new();
        loop {
            let i = m.current.load(Ordering::Relaxed) % n;
            let via_hint = outside.take();
            let from_hint = via_hint.is_some();
            let conn = via_hint.clone().unwrap_or_else(|| m.conns[i].clone());
            let status = match call(conn).await {
                Ok(response) => {
                    if from_hint {
                        *hinted() = via_hint;
                    }
                    return Ok(response.into_inner());
                }
                Err(status) => status,
            };
            if from_hint {
                *hinted() = None;
            }
            let hint = status
                .metadata()
                .get(LEADER_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .filter(|h| !dialled.contains(h));
            let error = AlluxioError::from(status);
            if !matches!(error, AlluxioError::Unavailable(_)) || Instant::now() >= deadline {
                return Err(error);
            }
            let known = hint
                .as_ref()
                .and_then(|h| m.addresses.iter().position(|a| a == h));
            match (hint, known) {
                (Some(_), Some(known)) => {
                    let _ =
                        m.current
                            .compare_exchange(i, known, Ordering::Relaxed, Ordering::Relaxed);
                }
                (Some(leader), None) => {
                    let endpoint = master_endpoint(&leader)?;
                    let channel =
                        alluxio_common::rpc::connect_lazy(&endpoint, self.credentials.tls());
                    outside = Some(Conn::over(channel, &self.credentials));
                    dialled.push(leader);
                }
                (None, _) if n == 1 && dialled.is_empty() => return Err(error),
                (None, _) => {
                    let next = (i + 1) % n;
                    let _ =
                        m.current
                            .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
                    tried_without_hint += 1;
                    // A full round without a leader: an election is running
                    // (short pauses: a new leader is usually up within 2 s).
                    if tried_without_hint % n == 0 {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_millis(100));
                    }
                }
            }
        }
    }

    pub async fn create_file(&self, req: CreateFileRequest) -> Result<FileInfo> {
        let r = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.fs.create_file(deadline(req)).await }
            })
            .await?;
        Ok(r.file_info.unwrap_or_default())
    }

    pub async fn complete_file(&self, req: CompleteFileRequest) -> Result<FileInfo> {
        let r = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.fs.complete_file(deadline(req)).await }
            })
            .await?;
        Ok(r.file_info.unwrap_or_default())
    }

    pub async fn create_directory(&self, req: CreateDirectoryRequest) -> Result<FileInfo> {
        let r = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.fs.create_directory(deadline(req)).await }
            })
            .await?;
        Ok(r.file_info.unwrap_or_default())
    }

    pub async fn get_status(&self, path: &str, sync_interval_ms: Option<i64>) -> Result<FileInfo> {
        let req = GetStatusRequest {
            path: path.to_string(),
            common: Some(FileSystemMasterCommonOptions { sync_interval_ms }),
        };
        let r = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.fs.get_status(deadline(req)).await }
            })
            .await?;
        Ok(r.file_info.unwrap_or_default())
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
        let (first, rest) = self
            .call(|mut c| {
                let req = req.clone();
                async move {
                    let mut stream = c.fs.list_status(deadline(req)).await?.into_inner();
                    // A refusal can come as the stream's first item (a
                    // master that lost its leadership as the call began):
                    // taken here, it is retried like a refused call.
                    let first = stream.message().await?;
                    Ok(tonic::Response::new((first, stream)))
                }
            })
            .await?;
        Ok(futures::stream::iter(first.map(Ok))
            .chain(rest)
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
        self.call(|mut c| {
            let req = req.clone();
            async move { c.fs.delete(deadline(req)).await }
        })
        .await?;
        Ok(())
    }

    pub async fn rename(&self, src: &str, dst: &str) -> Result<()> {
        let req = RenameRequest {
            src: src.to_string(),
            dst: dst.to_string(),
            common: None,
        };
        self.call(|mut c| {
            let req = req.clone();
            async move { c.fs.rename(deadline(req)).await }
        })
        .await?;
        Ok(())
    }

    pub async fn set_attribute(&self, req: SetAttributeRequest) -> Result<()> {
        self.call(|mut c| {
            let req = req.clone();
            async move { c.fs.set_attribute(deadline(req)).await }
        })
        .await?;
        Ok(())
    }

    pub async fn free(&self, path: &str, recursive: bool, forced: bool) -> Result<u64> {
        let req = FreeRequest {
            path: path.to_string(),
            recursive,
            forced,
        };
        let r = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.fs.free(deadline(req)).await }
            })
            .await?;
        Ok(r.blocks_freed)
    }

    pub async fn mount(&self, req: MountRequest) -> Result<MountPointInfo> {
        let r = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.fs.mount(deadline(req)).await }
            })
            .await?;
        Ok(r.mount.unwrap_or_default())
    }

    pub async fn unmount(&self, path: &str) -> Result<()> {
        let req = UnmountRequest {
            alluxio_path: path.to_string(),
        };
        self.call(|mut c| {
            let req = req.clone();
            async move { c.fs.unmount(deadline(req)).await }
        })
        .await?;
        Ok(())
    }

    pub async fn update_mount(&self, req: UpdateMountRequest) -> Result<MountPointInfo> {
        let r = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.fs.update_mount(deadline(req)).await }
            })
            .await?;
        Ok(r.mount.unwrap_or_default())
    }

    pub async fn mount_table(&self) -> Result<Vec<MountPointInfo>> {
        let r = self
            .call(|mut c| {
                let req = GetMountTableRequest {};
                async move { c.fs.get_mount_table(deadline(req)).await }
            })
            .await?;
        Ok(r.mounts)
    }

    pub async fn ufs_info(&self, mount_id: u64) -> Result<GetUfsInfoResponse> {
        let r = self
            .call(|mut c| {
                let req = GetUfsInfoRequest { mount_id };
                async move { c.fs.get_ufs_info(deadline(req)).await }
            })
            .await?;
        Ok(r)
    }

    /// A signed, expiring URL of the UFS object of the file at `path`.
    pub async fn ufs_read_url(&self, path: &str) -> Result<GetUfsReadUrlResponse> {
        self.call(|mut c| {
            let req = GetUfsReadUrlRequest {
                path: path.to_string(),
            };
            async move { c.fs.get_ufs_read_url(deadline(req)).await }
        })
        .await
    }

    pub async fn commit_persisted(&self, file_id: u64, ufs_mtime_ms: i64) -> Result<()> {
        self.call(|mut c| {
            let req = CommitPersistedRequest {
                file_id,
                ufs_mtime_ms,
            };
            async move { c.fs.commit_persisted(deadline(req)).await }
        })
        .await?;
        Ok(())
    }

    /// Submits a load job (or joins the running load of the same path).
    pub async fn submit_load(
        &self,
        path: &str,
        options: LoadOptions,
    ) -> Result<SubmitLoadResponse> {
        let req = SubmitLoadRequest {
            path: path.to_string(),
            options: Some(options),
        };
        self.call(|mut c| {
            let req = req.clone();
            async move { c.job.submit_load(deadline(req)).await }
        })
        .await
    }

    pub async fn list_jobs(&self) -> Result<Vec<JobInfo>> {
        let r = self
            .call(|mut c| async move { c.job.list_jobs(deadline(ListJobsRequest {})).await })
            .await?;
        Ok(r.jobs)
    }

    pub async fn get_job(&self, job_id: u64) -> Result<JobInfo> {
        let r = self
            .call(|mut c| async move { c.job.get_job(deadline(GetJobRequest { job_id })).await })
            .await?;
        r.job
            .ok_or_else(|| AlluxioError::Internal("the master sent no job".to_string()))
    }

    pub async fn stop_job(&self, job_id: u64) -> Result<JobInfo> {
        let r = self
            .call(|mut c| async move { c.job.stop_job(deadline(StopJobRequest { job_id })).await })
            .await?;
        r.job
            .ok_or_else(|| AlluxioError::Internal("the master sent no job".to_string()))
    }

    pub async fn master_info(&self) -> Result<GetMasterInfoResponse> {
        self.call(|mut c| {
            let req = GetMasterInfoRequest {};
            async move { c.meta.get_master_info(deadline(req)).await }
        })
        .await
    }

    /// The Raft group as the master this client talks to sees it.
    pub async fn quorum_info(&self) -> Result<GetQuorumInfoResponse> {
        self.call(|mut c| async move {
            c.meta
                .get_quorum_info(deadline(GetQuorumInfoRequest {}))
                .await
        })
        .await
    }

    /// `quorum remove`: drops the master at `raft_address` from the group
    /// (the leader answers; administrators only).
    pub async fn remove_quorum_member(&self, raft_address: &str) -> Result<()> {
        self.call(|mut c| {
            let req = RemoveQuorumMemberRequest {
                raft_address: raft_address.to_string(),
            };
            async move { c.meta.remove_quorum_member(deadline(req)).await }
        })
        .await?;
        Ok(())
    }

    /// `quorum elect`: makes the master at `raft_address` the leader.
    pub async fn transfer_leadership(&self, raft_address: &str) -> Result<()> {
        self.call(|mut c| {
            let req = TransferLeadershipRequest {
                raft_address: raft_address.to_string(),
            };
            async move { c.meta.transfer_leadership(deadline(req)).await }
        })
        .await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<()> {
        self.call(|mut c| {
            let req = PingRequest {};
            async move { c.meta.ping(deadline(req)).await }
        })
        .await?;
        Ok(())
    }

    pub async fn worker_infos(&self) -> Result<Vec<WorkerInfo>> {
        let r = self
            .call(|mut c| {
                let req = GetWorkerInfoListRequest {};
                async move { c.block.get_worker_info_list(deadline(req)).await }
            })
            .await?;
        Ok(r.workers)
    }

    /// Where a block lies, as the master knows it (workers only).
    pub async fn block_layout(&self, block_id: u64) -> Result<GetBlockLayoutResponse> {
        self.call(|mut c| {
            let req = GetBlockLayoutRequest { block_id };
            async move { c.block.get_block_layout(deadline(req)).await }
        })
        .await
    }

    pub async fn register_worker(&self, req: RegisterWorkerRequest) -> Result<()> {
        self.call(|mut c| {
            let req = req.clone();
            async move { c.block.register_worker(deadline(req)).await }
        })
        .await?;
        Ok(())
    }

    pub async fn worker_heartbeat(
        &self,
        req: WorkerHeartbeatRequest,
    ) -> Result<WorkerHeartbeatResponse> {
        self.call(|mut c| {
            let req = req.clone();
            async move { c.block.worker_heartbeat(deadline(req)).await }
        })
        .await
    }

    pub async fn commit_block(&self, req: CommitBlockRequest) -> Result<()> {
        self.call(|mut c| {
            let req = req.clone();
            async move { c.block.commit_block(deadline(req)).await }
        })
        .await?;
        Ok(())
    }
}
