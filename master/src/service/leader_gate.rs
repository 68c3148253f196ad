//! In fault-tolerant mode only the leader answers file-system, worker and
//! job RPCs. This tower layer sits in front of those services: a follower
//! answers `Unavailable` with the leader's address in the
//! `x-alluxio-leader` metadata (clients follow it), the leader confirms its
//! lease (or a quorum) before a call, and a read waits until everything it
//! may have seen is committed. `MetaMaster` (info, ping) is answered by
//! every master. A single master passes everything through, unless its
//! journal has failed: then it answers those services `Unavailable` with
//! the reason (its memory is ahead of its disk).

use crate::journal::JournalHealth;
use crate::raft::ReplicatedJournal;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::metadata::MetadataValue;
use tonic::Status;

use alluxio_common::rpc::LEADER_HEADER;

/// Methods that change nothing (a read that syncs metadata commits its
/// own changes before it answers).
const READ_ONLY: &[&str] = &[
    "GetStatus",
    "ListStatus",
    "GetMountTable",
    "GetWorkerInfoList",
    "GetBlockInfo",
    "GetBlockLayout",
    "ListJobs",
    "GetJob",
];

#[derive(Clone)]
pub struct LeaderGateLayer {
    pub replicated: Option<Arc<ReplicatedJournal>>,
    pub health: Arc<JournalHealth>,
}

impl<S> tower::Layer<S> for LeaderGateLayer {
    type Service = LeaderGate<S>;

    fn layer(&self, inner: S) -> LeaderGate<S> {
        LeaderGate {
            inner,
            journal: self.replicated.clone(),
            health: self.health.clone(),
        }
    }
}

#[derive(Clone)]
pub struct LeaderGate<S> {
    inner: S,
    journal: Option<Arc<ReplicatedJournal>>,
    health: Arc<JournalHealth>,
}

/// `None` for services every master answers; else whether the method
/// only reads.
fn classify(path: &str) -> Option<bool> {
    let (service, method) = path.trim_start_matches('/').split_once('/')?;
    match service {
        "alluxio.grpc.FileSystemMaster" | "alluxio.grpc.BlockMaster" | "alluxio.grpc.JobMaster" => {
            Some(READ_ONLY.contains(&method))
        }
        _ => None,
    }
}

/// `Unavailable` with the leader's address for the client to follow.
pub(crate) fn not_leader(journal: &ReplicatedJournal, message: String) -> Status {
    let mut status = Status::unavailable(message);
    if let Some(leader) = journal.not_leader().1 {
        if let Ok(value) = MetadataValue::try_from(leader.as_str()) {
            status.metadata_mut().insert(LEADER_HEADER, value);
        }
    }
    status
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for LeaderGate<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let class = classify(request.uri().path());
        // The service that was polled ready handles this call; a fresh
        // clone waits for the next one (the usual tower pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if let (Some(_), Some(why)) = (class, self.health.failure()) {
            return Box::pin(async move { Ok(Status::unavailable(why).into_http()) });
        }
        let gated = self
            .journal
            .clone()
            .and_then(|j| class.map(|read_only| (j, read_only)));
        let Some((journal, read_only)) = gated else {
            return Box::pin(inner.call(request));
        };
        Box::pin(async move {
            if let Err(e) = journal.confirm_leadership().await {
                return Ok(not_leader(&journal, e.to_string()).into_http());
            }
            let response = inner.call(request).await?;
            if read_only {
                if let Err(e) = journal.await_visible_committed().await {
                    return Ok(not_leader(&journal, e.to_string()).into_http());
                }
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn only_file_system_and_block_services_are_gated() {
        assert_eq!(
            classify("/alluxio.grpc.FileSystemMaster/GetStatus"),
            Some(true)
        );
        assert_eq!(
            classify("/alluxio.grpc.FileSystemMaster/CreateFile"),
            Some(false)
        );
        assert_eq!(
            classify("/alluxio.grpc.BlockMaster/WorkerHeartbeat"),
            Some(false)
        );
        assert_eq!(classify("/alluxio.grpc.MetaMaster/GetMasterInfo"), None);
        assert_eq!(classify("/alluxio.raft.RaftPeer/Vote"), None);
        assert_eq!(classify("garbage"), None);
    }
}
