//! `MetaMaster` gRPC service: master-wide information, a no-op ping, and
//! the Raft group's administration (answered by the leader; followers
//! redirect to it).

use super::access::AccessPolicy;
use super::leader_gate::not_leader;
use crate::fs_master::FileSystemMaster;
use crate::metrics::MasterMetrics;
use crate::raft::ReplicatedJournal;
use alluxio_common::auth::caller;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::meta_master_server::MetaMaster as MetaService;
use alluxio_proto::grpc::*;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct MetaMasterService {
    pub fs: Arc<FileSystemMaster>,
    pub access: Arc<AccessPolicy>,
    pub metrics: Arc<MasterMetrics>,
    pub address: String,
    pub web_port: u16,
    pub start_time_ms: i64,
}

impl MetaMasterService {
    /// The leader's journal, for a membership change by an administrator.
    fn quorum_admin<T>(
        &self,
        request: &Request<T>,
        op: &str,
        address: &str,
    ) -> Result<Arc<ReplicatedJournal>, Status> {
        let who = caller(request)?;
        self.access.require_admin(&who, op, address)?;
        let journal = self.fs.journal().replicated().ok_or_else(|| {
            AlluxioError::FailedPrecondition(
                "this cluster runs a single master (no embedded journal quorum)".to_string(),
            )
        })?;
        if !journal.is_serving() {
            return Err(not_leader(journal, journal.not_leader().0));
        }
        Ok(journal.clone())
    }
}

#[tonic::async_trait]
impl MetaService for MetaMasterService {
    async fn get_master_info(
        &self,
        _req: Request<GetMasterInfoRequest>,
    ) -> Result<Response<GetMasterInfoResponse>, Status> {
        self.metrics
            .observe("GetMasterInfo", async {
                let (files, directories, mount_points) = {
                    let state = self.fs.read_state();
                    (
                        state.tree.file_count(),
                        state.tree.directory_count(),
                        state.mounts.len() as u32,
                    )
                };
                let blocks = self.fs.block_master();
                let (live, lost) = blocks.worker_counts();
                let journal = self.fs.journal();
                Ok(GetMasterInfoResponse {
                    version: alluxio_common::VERSION.to_string(),
                    address: self.address.clone(),
                    web_port: self.web_port as u32,
                    start_time_ms: self.start_time_ms,
                    files,
                    directories,
                    live_workers: live,
                    lost_workers: lost,
                    capacity: blocks.capacity_by_tier(),
                    journal: Some(JournalInfo {
                        directory: journal.dir().display().to_string(),
                        last_sequence: journal.last_sequence(),
                        entries_since_checkpoint: journal.entries_since_checkpoint(),
                        last_checkpoint_sequence: journal.checkpoint_sequence(),
                        last_checkpoint_time_ms: journal.checkpoint_time_ms(),
                    }),
                    mount_points,
                    default_block_size_bytes: self.fs.settings.default_block_size,
                })
            })
            .await
    }

    async fn ping(&self, _req: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        self.metrics
            .observe("Ping", async { Ok(PingResponse {}) })
            .await
    }

    async fn get_quorum_info(
        &self,
        _req: Request<GetQuorumInfoRequest>,
    ) -> Result<Response<GetQuorumInfoResponse>, Status> {
        self.metrics
            .observe("GetQuorumInfo", async {
                Ok(match self.fs.journal().replicated() {
                    Some(journal) => journal.quorum_info().await,
                    None => GetQuorumInfoResponse::default(),
                })
            })
            .await
    }

    async fn remove_quorum_member(
        &self,
        request: Request<RemoveQuorumMemberRequest>,
    ) -> Result<Response<RemoveQuorumMemberResponse>, Status> {
        let address = request.get_ref().raft_address.clone();
        let journal = self.quorum_admin(&request, "RemoveQuorumMember", &address)?;
        self.metrics
            .observe("RemoveQuorumMember", async {
                journal.remove_member(&address).await?;
                Ok(RemoveQuorumMemberResponse {})
            })
            .await
    }

    async fn transfer_leadership(
        &self,
        request: Request<TransferLeadershipRequest>,
    ) -> Result<Response<TransferLeadershipResponse>, Status> {
        let address = request.get_ref().raft_address.clone();
        let journal = self.quorum_admin(&request, "TransferLeadership", &address)?;
        self.metrics
            .observe("TransferLeadership", async {
                journal.transfer_leadership(&address).await?;
                Ok(TransferLeadershipResponse {})
            })
            .await
    }
}
