//! Raft messages between masters: openraft's requests, bincode-encoded,
//! inside the `RaftPeer` gRPC service on `master.embedded_journal.port`,
//! and the few messages of membership (`Discover`, `Join`, `ElectNow`).
//!
//! The port is authenticated like every other: a peer presents a token of
//! the cluster key with the admin role (only masters and administrators
//! hold the key). Every Raft message also names the group (its founding
//! member list) and the member it is meant for; a master of another group,
//! or one now at an address another member used to have, refuses it by
//! name, so it is never counted in a quorum it does not belong to.

use super::{ReplicatedJournal, TypeConfig};
use alluxio_common::auth::{caller, AuthChannel, Credentials, Role};
use alluxio_proto::raft::raft_peer_client::RaftPeerClient;
use alluxio_proto::raft::raft_peer_server::RaftPeer;
use alluxio_proto::raft::{
    DiscoverRequest, DiscoverResponse, ElectNowRequest, ElectNowResponse, JoinRequest,
    JoinResponse, RaftPayload,
};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{de::DeserializeOwned, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tonic::{Request, Response, Status};

use super::membership::MasterNode;

/// gRPC metadata naming the group a Raft message belongs to. Older
/// versions sent their configured member list under this name, which is
/// the group's name for a group they founded: masters of both versions
/// keep talking through a rolling upgrade.
pub const GROUP_HEADER: &str = "x-alluxio-raft-members";
/// gRPC metadata naming the member id a Raft message is meant for.
pub const TARGET_HEADER: &str = "x-alluxio-raft-target";

/// Largest Raft message accepted (a snapshot chunk is 4 MiB; a batch of
/// appended entries is bounded by `max_payload_entries`).
const MAX_MESSAGE: usize = 64 << 20;

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Status> {
    bincode::serialize(value).map_err(|e| Status::internal(format!("cannot encode: {e}")))
}

fn decode<T: DeserializeOwned>(data: &[u8]) -> Result<T, Status> {
    bincode::deserialize(data)
        .map_err(|e| Status::invalid_argument(format!("undecodable Raft message: {e}")))
}

/// A client of the master at `address`'s Raft port; the connection is
/// made lazily and re-made after failures by tonic.
pub fn peer_client(
    credentials: &Credentials,
    address: &str,
) -> Result<RaftPeerClient<AuthChannel>, String> {
    alluxio_common::rpc::endpoint(address)
        .map(|e| {
            RaftPeerClient::new(credentials.connect_lazy(&e))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE)
        })
        .map_err(|e| format!("bad Raft address {address}: {e}"))
}

/// Adds the group and target headers.
fn address_to<T>(request: &mut Request<T>, group: &str, target: u64) {
    if let Ok(v) = group.parse() {
        request.metadata_mut().insert(GROUP_HEADER, v);
    }
    if let Ok(v) = target.to_string().parse() {
        request.metadata_mut().insert(TARGET_HEADER, v);
    }
}

/// Creates a client per peer.
#[derive(Clone)]
pub struct PeerNetwork {
    pub credentials: Credentials,
    /// The group's name (see `membership`).
    pub group: String,
}

impl PeerNetwork {
    /// Tells member `target` at `address` to stand for election now.
    pub async fn elect_now(&self, address: &str, target: u64) -> Result<(), String> {
        let mut client = peer_client(&self.credentials, address)?;
        let mut request = Request::new(ElectNowRequest {});
        address_to(&mut request, &self.group, target);
        client
            .elect_now(request)
            .await
            .map(|_| ())
            .map_err(|s| s.message().to_string())
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &MasterNode) -> PeerClient {
        PeerClient {
            target,
            client: peer_client(&self.credentials, &node.raft_address),
            group: self.group.clone(),
        }
    }
}

pub struct PeerClient {
    target: u64,
    client: Result<RaftPeerClient<AuthChannel>, String>,
    group: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

impl PeerClient {
    /// One call: encode, send with the option's deadline, decode the
    /// peer's `Result`.
    async fn call<Req, Resp, E>(
        &mut self,
        method: &'static str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, MasterNode, RaftError<u64, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let unreachable =
            |msg: String| RPCError::Unreachable(Unreachable::new(&TransportError(msg)));
        let mut client = self.client.clone().map_err(unreachable)?;
        let data = bincode::serialize(req)
            .map_err(|e| RPCError::Network(NetworkError::new(&TransportError(e.to_string()))))?;
        let mut request = Request::new(RaftPayload { data });
        request.set_timeout(option.hard_ttl());
        address_to(&mut request, &self.group, self.target);
        let reply = match method {
            "append_entries" => client.append_entries(request).await,
            "vote" => client.vote(request).await,
            _ => client.install_snapshot(request).await,
        };
        let reply = reply.map_err(|s| {
            if s.code() == tonic::Code::FailedPrecondition {
                tracing::error!(
                    peer = self.target,
                    error = s.message(),
                    "a master refuses this one's Raft messages"
                );
            }
            unreachable(format!(
                "{method} to master {}: {}",
                self.target,
                s.message()
            ))
        })?;
        let result: Result<Resp, RaftError<u64, E>> =
            bincode::deserialize(&reply.into_inner().data).map_err(|e| {
                RPCError::Network(NetworkError::new(&TransportError(e.to_string())))
            })?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, MasterNode, RaftError<u64>>> {
        self.call("append_entries", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, MasterNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.call("install_snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, MasterNode, RaftError<u64>>> {
        self.call("vote", &rpc, &option).await
    }
}

/// The server side: hands each message to the local Raft node. It serves
/// from before that node exists (a master on its first start answers
/// `Discover` while it finds its place), refusing Raft messages until then.
pub struct PeerService {
    /// Set once this master's Raft node runs.
    pub journal: Arc<OnceLock<Arc<ReplicatedJournal>>>,
    /// This master's `master.embedded_journal.addresses`.
    pub configured: Vec<String>,
    /// Votes are refused until then: a restarted master must not vote for
    /// a new leader while the old one may still count on its earlier
    /// acknowledgement (the leader's read lease; see `raft/mod.rs`).
    pub votes_from: Instant,
}

fn require_admin<T>(request: &Request<T>) -> Result<(), Status> {
    if caller(request)?.role != Role::Admin {
        return Err(Status::permission_denied(
            "only masters exchange Raft messages",
        ));
    }
    Ok(())
}

impl PeerService {
    fn running(&self) -> Result<&Arc<ReplicatedJournal>, Status> {
        self.journal
            .get()
            .ok_or_else(|| Status::unavailable("this master's Raft node is starting"))
    }

    /// The local node, for a message of its group meant for it.
    fn check<T>(&self, request: &Request<T>) -> Result<&Arc<ReplicatedJournal>, Status> {
        require_admin(request)?;
        let journal = self.running()?;
        let header = |name| {
            request
                .metadata()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        let group = header(GROUP_HEADER);
        if group != journal.group {
            tracing::error!(ours = %journal.group, theirs = group, "a master of another Raft group contacted this one");
            return Err(Status::failed_precondition(format!(
                "another Raft group: this master belongs to the group founded as [{}], the caller to [{group}]",
                journal.group
            )));
        }
        // Older versions do not name the target.
        let target = header(TARGET_HEADER);
        if !target.is_empty() && target != journal.settings.me.to_string() {
            return Err(Status::failed_precondition(format!(
                "this master is member {}, not member {target}",
                journal.settings.me
            )));
        }
        Ok(journal)
    }
}

fn reply<T: Serialize>(value: &T) -> Result<Response<RaftPayload>, Status> {
    Ok(Response::new(RaftPayload {
        data: encode(value)?,
    }))
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn append_entries(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let journal = self.check(&request)?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&request.into_inner().data)?;
        reply(&journal.raft.append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let journal = self.check(&request)?;
        if Instant::now() < self.votes_from {
            return Err(Status::unavailable(
                "this master has just started and does not vote yet",
            ));
        }
        let rpc: VoteRequest<u64> = decode(&request.into_inner().data)?;
        // A removed member may still stand; it gets no vote here.
        let candidate = rpc.vote.leader_id().voted_for();
        if !candidate.is_some_and(|c| journal.members().iter().any(|m| m.id == c && m.voter)) {
            return Err(Status::failed_precondition(format!(
                "member {candidate:?} is not a voter of this group"
            )));
        }
        reply(&journal.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let journal = self.check(&request)?;
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(&request.into_inner().data)?;
        reply(&journal.raft.install_snapshot(rpc).await)
    }

    async fn discover(
        &self,
        request: Request<DiscoverRequest>,
    ) -> Result<Response<DiscoverResponse>, Status> {
        require_admin(&request)?;
        let mut response = DiscoverResponse {
            configured: self.configured.clone(),
            ..Default::default()
        };
        if let Some(journal) = self.journal.get() {
            response.in_group = true;
            response.group = journal.group.clone();
            response.leader_raft_address = journal.leader_raft_address().unwrap_or_default();
        }
        Ok(Response::new(response))
    }

    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        require_admin(&request)?;
        let journal = self.running()?;
        let response = journal.admit(request.get_ref()).await?;
        Ok(Response::new(response))
    }

    async fn elect_now(
        &self,
        request: Request<ElectNowRequest>,
    ) -> Result<Response<ElectNowResponse>, Status> {
        let journal = self.check(&request)?;
        journal
            .raft
            .trigger()
            .elect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(ElectNowResponse {}))
    }
}

/// The service with the message size limits of Raft traffic.
pub fn server(
    service: PeerService,
) -> alluxio_proto::raft::raft_peer_server::RaftPeerServer<PeerService> {
    alluxio_proto::raft::raft_peer_server::RaftPeerServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}
