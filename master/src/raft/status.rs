//! What `alluxio fsadmin journal quorum info`, `fsadmin report`, `/metrics`
//! and readiness show of the Raft group: roles, terms, log positions, each
//! member's lag as the leader sees it.

use super::ReplicatedJournal;
use alluxio_proto::grpc::{GetQuorumInfoResponse, QuorumMember};
use openraft::ServerState;
use std::time::Duration;

/// A member the leader's log is this far ahead of is shown as LAGGING.
const LAGGING_ENTRIES: u64 = 1000;

impl ReplicatedJournal {
    /// The group as this master sees it. Members' progress is known only
    /// to the leader; others report their own position. Reachability is
    /// probed with a TCP connect to each member's Raft port.
    pub async fn quorum_info(&self) -> GetQuorumInfoResponse {
        let m = self.raft.metrics().borrow().clone();
        let me = self.settings.me;
        let last_log = m.last_log_index.unwrap_or(0);
        let all = self.members();
        let leader = m
            .current_leader
            .and_then(|l| all.iter().find(|x| x.id == l));
        let mut members = Vec::new();
        for member in &all {
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&member.id).cloned().flatten())
                .map(|l| l.index);
            let reachable = member.id == me || probe(&member.raft_address).await;
            let role = if Some(member.id) == m.current_leader {
                "LEADER"
            } else if !reachable {
                "UNAVAILABLE"
            } else if !member.voter {
                "LEARNER"
            } else if matched.is_some_and(|i| last_log.saturating_sub(i) > LAGGING_ENTRIES) {
                "LAGGING"
            } else {
                "FOLLOWER"
            };
            let matched = if member.id == me {
                Some(last_log)
            } else {
                matched
            };
            members.push(QuorumMember {
                id: member.id,
                raft_address: member.raft_address.clone(),
                rpc_address: member.rpc_address.clone(),
                role: role.to_string(),
                matched_index: matched.unwrap_or(0),
                lag: matched.map(|i| last_log.saturating_sub(i)).unwrap_or(0),
            });
        }
        GetQuorumInfoResponse {
            fault_tolerant: true,
            this_member: me,
            leader_id: m.current_leader.unwrap_or(0),
            leader_rpc_address: leader.map(|l| l.rpc_address.clone()).unwrap_or_default(),
            term: m.current_term,
            last_log_index: last_log,
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
            serving: self.is_serving() && m.state == ServerState::Leader,
            members,
        }
    }
}

async fn probe(address: &str) -> bool {
    let connect = tokio::net::TcpStream::connect(address.to_string());
    matches!(
        tokio::time::timeout(Duration::from_millis(500), connect).await,
        Ok(Ok(_))
    )
}
