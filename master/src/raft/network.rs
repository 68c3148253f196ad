//! Raft messages between masters: openraft's requests, bincode-encoded,
//! inside the `RaftPeer` gRPC service on `master.embedded_journal.port`.
//!
//! The port is authenticated like every other: a peer presents a token of
//! the cluster key with the admin role (only masters and administrators
//! hold the key). Every call also names the caller's configured member
//! list; a master configured with a different list is refused by name, so
//! a misconfigured master can never join a quorum it was not meant for.

use super::TypeConfig;
use alluxio_common::auth::{caller, AuthChannel, Credentials, Role};
use alluxio_proto::raft::raft_peer_client::RaftPeerClient;
use alluxio_proto::raft::raft_peer_server::RaftPeer;
use alluxio_proto::raft::RaftPayload;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use serde::{de::DeserializeOwned, Serialize};
use std::time::Instant;
use tonic::{Request, Response, Status};

/// gRPC metadata naming the caller's `master.embedded_journal.addresses`.
pub const MEMBERS_HEADER: &str = "x-alluxio-raft-members";

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

/// Creates a client per peer; connections are made lazily and re-made
/// after failures by tonic.
pub struct PeerNetwork {
    pub credentials: Credentials,
    pub members: String,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        let client = alluxio_common::rpc::endpoint(&node.addr)
            .map(|e| {
                let channel = self.credentials.attach(e.connect_lazy());
                RaftPeerClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE)
            })
            .map_err(|e| format!("bad Raft address {}: {e}", node.addr));
        PeerClient {
            target,
            client,
            members: self.members.clone(),
        }
    }
}

pub struct PeerClient {
    target: u64,
    client: Result<RaftPeerClient<AuthChannel>, String>,
    members: String,
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
    ) -> Result<Resp, RPCError<u64, BasicNode, RaftError<u64, E>>>
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
        if let Ok(v) = self.members.parse() {
            request.metadata_mut().insert(MEMBERS_HEADER, v);
        }
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
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call("append_entries", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.call("install_snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call("vote", &rpc, &option).await
    }
}

/// The server side: hands each message to the local Raft node.
pub struct PeerService {
    pub raft: Raft<TypeConfig>,
    pub members: String,
    /// Votes are refused until then: a restarted master must not vote for
    /// a new leader while the old one may still count on its earlier
    /// acknowledgement (the leader's read lease; see `raft/mod.rs`).
    pub votes_from: Instant,
}

impl PeerService {
    fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let who = caller(request)?;
        if who.role != Role::Admin {
            return Err(Status::permission_denied(
                "only masters exchange Raft messages",
            ));
        }
        let theirs = request
            .metadata()
            .get(MEMBERS_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if theirs != self.members {
            tracing::error!(ours = %self.members, theirs, "a master with different master.embedded_journal.addresses contacted this one");
            return Err(Status::failed_precondition(format!(
                "master.embedded_journal.addresses differ: this master has [{}], the caller [{theirs}]",
                self.members
            )));
        }
        Ok(())
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
        self.check(&request)?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&request.into_inner().data)?;
        reply(&self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.check(&request)?;
        if Instant::now() < self.votes_from {
            return Err(Status::unavailable(
                "this master has just started and does not vote yet",
            ));
        }
        let rpc: VoteRequest<u64> = decode(&request.into_inner().data)?;
        reply(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.check(&request)?;
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(&request.into_inner().data)?;
        reply(&self.raft.install_snapshot(rpc).await)
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
