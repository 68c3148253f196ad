//! `BlockMaster` gRPC service: worker registration and heartbeats.

use crate::fs_master::FileSystemMaster;
use crate::metrics::MasterMetrics;
use crate::service::access::AccessPolicy;
use alluxio_common::auth::caller;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::block_master_server::BlockMaster as BlockService;
use alluxio_proto::grpc::*;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct BlockMasterService {
    pub fs: Arc<FileSystemMaster>,
    pub metrics: Arc<MasterMetrics>,
    pub access: Arc<AccessPolicy>,
    /// Random per master process: the high bits of every pinned-set
    /// version, so no version a worker holds from an earlier master
    /// process matches one of this process.
    pub pinned_epoch: u64,
}

impl BlockMasterService {
    /// This process's version of the pinned set after `changes` changes.
    fn pinned_version(&self, changes: u64) -> u64 {
        (self.pinned_epoch << 40) | (changes & ((1 << 40) - 1))
    }
}

fn check_worker(id: u64, address: Option<&WorkerAddress>) -> Result<(), AlluxioError> {
    if id == 0 {
        return Err(AlluxioError::InvalidArgument(
            "worker_id must not be 0".to_string(),
        ));
    }
    if let Some(a) = address {
        if a.host.is_empty()
            || a.rpc_port == 0
            || a.rpc_port > u16::MAX as u32
            || a.data_port > u16::MAX as u32
        {
            return Err(AlluxioError::InvalidArgument(format!(
                "invalid worker address {}:{}",
                a.host, a.rpc_port
            )));
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl BlockService for BlockMasterService {
    async fn register_worker(
        &self,
        req: Request<RegisterWorkerRequest>,
    ) -> Result<Response<RegisterWorkerResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("RegisterWorker", async {
                self.access.require_worker(&who, "RegisterWorker")?;
                let address = r
                    .address
                    .ok_or_else(|| AlluxioError::InvalidArgument("missing worker address".to_string()))?;
                check_worker(r.worker_id, Some(&address))?;
                let blocks: Vec<(u64, String)> = r
                    .blocks_on_tiers
                    .into_iter()
                    .flat_map(|(tier, list)| list.block_ids.into_iter().map(move |b| (b, tier.clone())))
                    .collect();
                let fs = &self.fs;
                if r.page > 0 {
                    // A further page: the worker must have sent page 0.
                    if !fs.block_master().add_registered_blocks(r.worker_id, blocks, |b| fs.is_valid_block(b)) {
                        return Err(AlluxioError::FailedPrecondition(format!(
                            "worker {} sent page {} of its blocks before page 0",
                            r.worker_id, r.page
                        )));
                    }
                    return Ok(RegisterWorkerResponse {});
                }
                tracing::info!(worker_id = r.worker_id, host = %address.host, port = address.rpc_port, blocks = blocks.len(), "worker registered");
                fs.block_master()
                    .register(r.worker_id, address, r.tiers, blocks, |b| fs.is_valid_block(b));
                Ok(RegisterWorkerResponse {})
            })
            .await
    }

    async fn worker_heartbeat(
        &self,
        req: Request<WorkerHeartbeatRequest>,
    ) -> Result<Response<WorkerHeartbeatResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("WorkerHeartbeat", async {
                self.access.require_worker(&who, "WorkerHeartbeat")?;
                check_worker(r.worker_id, None)?;
                let added = r
                    .added_blocks
                    .into_iter()
                    .map(|b| (b.block_id, b.length, b.tier_alias))
                    .collect();
                let fs = &self.fs;
                let command = fs.block_master().heartbeat(
                    r.worker_id,
                    r.tiers,
                    added,
                    r.removed_block_ids,
                    |b| fs.is_valid_block(b),
                );
                // The pinned set only to a worker that holds another one.
                let pinned = {
                    let state = fs.read_state();
                    let version = self.pinned_version(state.pinned_changes);
                    (r.pinned_version != version).then(|| PinnedFiles {
                        version,
                        file_ids: state.pinned_files.iter().copied().collect(),
                    })
                };
                let persist_files = if command.command_type == CommandType::Register as i32 {
                    Vec::new()
                } else {
                    fs.persist_jobs_for(r.worker_id)
                };
                Ok(WorkerHeartbeatResponse {
                    command: Some(command),
                    pinned,
                    persist_files,
                })
            })
            .await
    }

    async fn commit_block(
        &self,
        req: Request<CommitBlockRequest>,
    ) -> Result<Response<CommitBlockResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("CommitBlock", async {
                self.access.require_worker(&who, "CommitBlock")?;
                check_worker(r.worker_id, None)?;
                if !self.fs.is_valid_block(r.block_id) {
                    return Err(AlluxioError::NotFound(format!(
                        "Block {} belongs to no existing file",
                        r.block_id
                    )));
                }
                if !self.fs.block_master().commit_block(
                    r.worker_id,
                    r.block_id,
                    r.length,
                    &r.tier_alias,
                ) {
                    return Err(AlluxioError::FailedPrecondition(format!(
                        "Worker {} is not registered; register first",
                        r.worker_id
                    )));
                }
                Ok(CommitBlockResponse {})
            })
            .await
    }

    async fn get_worker_info_list(
        &self,
        _req: Request<GetWorkerInfoListRequest>,
    ) -> Result<Response<GetWorkerInfoListResponse>, Status> {
        self.metrics
            .observe("GetWorkerInfoList", async {
                Ok(GetWorkerInfoListResponse {
                    workers: self.fs.block_master().worker_infos(),
                })
            })
            .await
    }

    async fn get_block_layout(
        &self,
        req: Request<GetBlockLayoutRequest>,
    ) -> Result<Response<GetBlockLayoutResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("GetBlockLayout", async {
                self.access.require_worker(&who, "GetBlockLayout")?;
                self.fs.block_layout(r.block_id)
            })
            .await
    }

    async fn get_block_info(
        &self,
        req: Request<GetBlockInfoRequest>,
    ) -> Result<Response<GetBlockInfoResponse>, Status> {
        let r = req.into_inner();
        self.metrics
            .observe("GetBlockInfo", async {
                if !self.fs.is_valid_block(r.block_id) {
                    return Err(AlluxioError::NotFound(format!(
                        "Block {} does not exist",
                        r.block_id
                    )));
                }
                Ok(GetBlockInfoResponse {
                    block_info: Some(BlockInfo {
                        block_id: r.block_id,
                        length: 0,
                        locations: self.fs.block_master().locations(r.block_id),
                    }),
                })
            })
            .await
    }
}
