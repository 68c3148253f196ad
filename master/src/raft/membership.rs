//! Who belongs to the Raft group, and how that changes.
//!
//! - `MasterNode`: a member as the group's membership (in the log and in
//!   snapshots) records it: its Raft address and its client address;
//! - `MemberRecord` (`raft-member` in the journal directory): this master's
//!   member id and the group it belongs to, written once, before its first
//!   Raft message, and never changed;
//! - `find_place`: what a master does on its first start. A master named
//!   in the group's founding list (the `master.embedded_journal.addresses`
//!   the group was created with) takes the place it was created with; any
//!   other master joins the running group through its leader, as a learner
//!   first and a voter once it has caught up (`admit`, `promote_learners`);
//! - the leader's side of membership changes: admitting, promoting,
//!   removing a member, and handing leadership over to another member.
//!
//! The group's name is its founding member list. Every Raft message carries
//! it and the id of the member it is meant for, so a master of another group
//! (or one that took another's address) is refused instead of being counted.

use super::log_store::{read_small_file, write_small_file};
use super::network::peer_client;
use super::takeover;
use super::{Member, RaftSettings, ReplicatedJournal};
use crate::journal::JournalError;
use alluxio_common::auth::Credentials;
use alluxio_common::AlluxioError;
use alluxio_proto::raft::{DiscoverRequest, DiscoverResponse, JoinRequest, JoinResponse};
use openraft::ChangeMembers;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A member's addresses as the membership records them.
///
/// Encoded compatibly with openraft's `BasicNode { addr }`, which journals
/// written before membership changes hold: in binary (the log, Raft
/// messages) as one string, `"<raft address> <rpc address>"` (theirs is the
/// Raft address alone); in JSON (snapshot metadata) as `{"addr", "rpc"}`
/// (theirs lacks `rpc`). Without a recorded client address, the
/// configuration supplies it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MasterNode {
    pub raft_address: String,
    /// Empty when not recorded (older journals).
    pub rpc_address: String,
}

/// `MasterNode` in JSON.
#[derive(Serialize, Deserialize)]
struct NodeJson {
    addr: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    rpc: String,
}

impl MasterNode {
    pub fn new(raft_address: &str, rpc_address: &str) -> MasterNode {
        MasterNode {
            raft_address: raft_address.to_string(),
            rpc_address: rpc_address.to_string(),
        }
    }
}

impl Serialize for MasterNode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            NodeJson {
                addr: self.raft_address.clone(),
                rpc: self.rpc_address.clone(),
            }
            .serialize(s)
        } else if self.rpc_address.is_empty() {
            s.serialize_str(&self.raft_address)
        } else {
            s.serialize_str(&format!("{} {}", self.raft_address, self.rpc_address))
        }
    }
}

impl<'de> Deserialize<'de> for MasterNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MasterNode, D::Error> {
        if d.is_human_readable() {
            let json = NodeJson::deserialize(d)?;
            return Ok(MasterNode::new(&json.addr, &json.rpc));
        }
        let text = String::deserialize(d)?;
        Ok(match text.split_once(' ') {
            Some((raft, rpc)) => MasterNode::new(raft, rpc),
            None => MasterNode::new(&text, ""),
        })
    }
}

/// This master's place in its group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub id: u64,
    /// The group's founding member list.
    pub group: String,
    /// Whether this master founded the group (it initialises the group's
    /// first membership, identical on every founder, if it has not yet).
    pub founder: bool,
}

const RECORD_FILE: &str = "raft-member";

/// Whether `dir` holds a Raft log, vote or snapshot.
fn has_raft_state(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.starts_with("raft-") && name != RECORD_FILE || name.starts_with("snapshot-")
        })
    })
}

/// What a peer said when asked who it is.
struct Answer {
    address: String,
    response: DiscoverResponse,
}

/// This master's place: its record if it has one; else, for a journal
/// written before records existed, the configured position; else it asks
/// the configured masters and founds the group with them or joins it.
/// Waits (logging) while no decision can be made; fails for a master that
/// the running group refuses or whose configuration disagrees with the
/// other founders'.
pub async fn find_place(
    settings: &RaftSettings,
    credentials: &Credentials,
) -> Result<MemberRecord, JournalError> {
    let path = settings.dir.join(RECORD_FILE);
    if let Some(record) = read_small_file::<MemberRecord>(&path)? {
        return Ok(record);
    }
    let founder = MemberRecord {
        id: settings.me,
        group: settings.fingerprint(),
        founder: true,
    };
    if takeover::holds_single_master_journal(&settings.dir) && !has_raft_state(&settings.dir) {
        if settings.members.len() != 1 {
            return Err(JournalError::Failed(format!(
                "{} holds a single master's journal; to take it over, start this master alone \
                 (master.embedded_journal.addresses naming only itself), then start the other \
                 masters with the full list: they join it",
                settings.dir.display()
            )));
        }
        let (dir, me) = (settings.dir.clone(), settings.members[0].clone());
        let key = settings.journal_key.clone();
        tokio::task::spawn_blocking(move || takeover::take_over(&dir, &me, key.as_deref()))
            .await
            .map_err(|e| JournalError::Failed(format!("journal takeover failed: {e}")))??;
    }
    let record = if has_raft_state(&settings.dir) {
        founder
    } else {
        loop {
            match decide(settings, credentials, &founder).await? {
                Some(record) => break record,
                None => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    };
    if let Err(e) = alluxio_common::io::create_private_dir(&settings.dir) {
        if !settings.dir.is_dir() {
            return Err(JournalError::io(&settings.dir, e));
        }
    }
    write_small_file(&path, &record).map_err(|e| JournalError::io(&path, e))?;
    tracing::info!(id = record.id, group = %record.group, founder = record.founder, "member of the Raft group");
    Ok(record)
}

/// One round of asking; `None` when it must wait and ask again.
async fn decide(
    settings: &RaftSettings,
    credentials: &Credentials,
    founder: &MemberRecord,
) -> Result<Option<MemberRecord>, JournalError> {
    let me = settings.member(settings.me).expect("me is a member");
    let others = settings.members.iter().filter(|m| m.id != settings.me);
    let asks = others.map(|m| async move {
        let mut client = peer_client(credentials, &m.raft_address).ok()?;
        let mut request = tonic::Request::new(DiscoverRequest {});
        request.set_timeout(Duration::from_secs(2));
        let response = client.discover(request).await.ok()?.into_inner();
        Some(Answer {
            address: m.raft_address.clone(),
            response,
        })
    });
    let answers: Vec<Answer> = futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect();
    let in_group: Vec<&Answer> = answers.iter().filter(|a| a.response.in_group).collect();
    // Named in the founding list: take that place (as every founder does).
    if in_group.iter().any(|a| a.response.group == founder.group) {
        return Ok(Some(founder.clone()));
    }
    if let Some(leader) = in_group
        .iter()
        .map(|a| a.response.leader_raft_address.clone())
        .find(|l| !l.is_empty())
    {
        return join(settings, credentials, me, &leader).await;
    }
    if let Some(a) = in_group.first() {
        tracing::info!(peer = %a.address, group = %a.response.group, "the group has no leader yet; waiting to join it");
        return Ok(None);
    }
    let ours = &settings.fingerprint();
    if let Some(a) = answers
        .iter()
        .find(|a| &a.response.configured.join(",") != ours)
    {
        return Err(JournalError::Failed(format!(
            "master.embedded_journal.addresses differ: this master has [{ours}], {} has [{}]; \
             every master of a new group must list the same masters in the same order",
            a.address,
            a.response.configured.join(",")
        )));
    }
    Ok(Some(founder.clone()))
}

async fn join(
    settings: &RaftSettings,
    credentials: &Credentials,
    me: &super::Member,
    leader: &str,
) -> Result<Option<MemberRecord>, JournalError> {
    let mut client = peer_client(credentials, leader).map_err(JournalError::Failed)?;
    let request = JoinRequest {
        raft_address: me.raft_address.clone(),
        rpc_address: me.rpc_address.clone(),
        configured: settings
            .members
            .iter()
            .map(|m| m.raft_address.clone())
            .collect(),
    };
    match client.join(request).await {
        Ok(r) => {
            let JoinResponse { member_id, group } = r.into_inner();
            tracing::info!(leader, id = member_id, "joined the Raft group as a learner");
            Ok(Some(MemberRecord {
                id: member_id,
                group,
                founder: false,
            }))
        }
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::FailedPrecondition | tonic::Code::PermissionDenied
            ) =>
        {
            Err(JournalError::Failed(format!(
                "the Raft group (leader {leader}) refuses this master: {}",
                s.message()
            )))
        }
        Err(s) => {
            tracing::info!(leader, error = s.message(), "cannot join yet; retrying");
            Ok(None)
        }
    }
}

/// Ends a leadership transfer: heartbeats on, serving again (if still
/// the leader).
struct ResumeLeading<'a>(&'a ReplicatedJournal);

impl Drop for ResumeLeading<'_> {
    fn drop(&mut self) {
        self.0.raft.runtime_config().heartbeat(true);
        self.0.transferring.store(false, Ordering::Release);
    }
}

/// A learner is made a voter once it is at most this many entries behind.
const CAUGHT_UP_ENTRIES: u64 = 64;

fn unavailable(e: impl std::fmt::Display) -> AlluxioError {
    AlluxioError::Unavailable(format!("membership change not made: {e}"))
}

impl ReplicatedJournal {
    /// The leader's answer to a master that asks to join: its member id,
    /// after the membership naming it as a learner has committed. A retry
    /// of the same join gets the same id.
    pub async fn admit(&self, request: &JoinRequest) -> Result<JoinResponse, AlluxioError> {
        if !self.is_serving() {
            return Err(AlluxioError::Unavailable(self.not_leader().0));
        }
        // Two masters joining at once must not both get the next id.
        let _one_change = self.membership_changes.lock().await;
        let members = self.members();
        let missing: Vec<&str> = members
            .iter()
            .filter(|m| m.voter && !request.configured.contains(&m.raft_address))
            .map(|m| m.raft_address.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(AlluxioError::FailedPrecondition(format!(
                "{} lists [{}] in master.embedded_journal.addresses, which lacks the members {}",
                request.raft_address,
                request.configured.join(","),
                missing.join(", ")
            )));
        }
        let response = |member_id| JoinResponse {
            member_id,
            group: self.group.clone(),
        };
        if let Some(m) = members
            .iter()
            .find(|m| !m.voter && m.raft_address == request.raft_address)
        {
            return Ok(response(m.id));
        }
        // Never an id used before: ids grow with the log.
        let last_index = self.raft.metrics().borrow().last_log_index.unwrap_or(0);
        let highest = members.iter().map(|m| m.id).max().unwrap_or(0);
        let id = highest.max(last_index) + 1;
        let node = MasterNode::new(&request.raft_address, &request.rpc_address);
        self.raft
            .add_learner(id, node, false)
            .await
            .map_err(unavailable)?;
        tracing::info!(id, raft = %request.raft_address, "admitted a master as a learner");
        Ok(response(id))
    }

    /// Makes every learner that has caught up a voter, in place of any
    /// voter at the same address (the member a wiped master used to be).
    /// All of them in one change: voter sets computed one learner at a
    /// time from the same view would each leave out the others (two
    /// masters joining together, the second change dropping the first).
    /// Runs on the leader.
    pub async fn promote_learners(&self) -> Result<(), AlluxioError> {
        let _one_change = self.membership_changes.lock().await;
        let (members, replication, last_index) = {
            let m = self.raft.metrics().borrow().clone();
            (self.members(), m.replication, m.last_log_index.unwrap_or(0))
        };
        let caught_up: Vec<&Member> = members
            .iter()
            .filter(|m| !m.voter)
            .filter(|learner| {
                let matched = replication
                    .as_ref()
                    .and_then(|r| r.get(&learner.id).cloned().flatten())
                    .map(|l| l.index);
                matched.is_some_and(|i| i + CAUGHT_UP_ENTRIES >= last_index)
            })
            .collect();
        if caught_up.is_empty() {
            return Ok(());
        }
        let replaced = |m: &Member| caught_up.iter().any(|l| l.raft_address == m.raft_address);
        let voters: BTreeSet<u64> = members
            .iter()
            .filter(|m| m.voter && !replaced(m))
            .chain(caught_up.iter().copied())
            .map(|m| m.id)
            .collect();
        self.raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters), false)
            .await
            .map_err(unavailable)?;
        for learner in caught_up {
            tracing::info!(id = learner.id, raft = %learner.raft_address, "a learner caught up and became a voter");
        }
        Ok(())
    }

    /// `quorum remove`: drops the member(s) at `raft_address` from the
    /// group. The leader cannot remove itself (move the leadership first).
    pub async fn remove_member(&self, raft_address: &str) -> Result<(), AlluxioError> {
        if !self.is_serving() {
            return Err(AlluxioError::Unavailable(self.not_leader().0));
        }
        let _one_change = self.membership_changes.lock().await;
        let members = self.members();
        let gone: BTreeSet<u64> = members
            .iter()
            .filter(|m| m.raft_address == raft_address)
            .map(|m| m.id)
            .collect();
        if gone.is_empty() {
            return Err(AlluxioError::NotFound(format!(
                "no member of the quorum has the Raft address {raft_address}"
            )));
        }
        if gone.contains(&self.settings.me) {
            return Err(AlluxioError::FailedPrecondition(format!(
                "{raft_address} is the leader; move the leadership first \
                 (alluxio fsadmin journal quorum elect --address <another member>)"
            )));
        }
        let voters: BTreeSet<u64> = members
            .iter()
            .filter(|m| m.voter && !gone.contains(&m.id))
            .map(|m| m.id)
            .collect();
        self.raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters), false)
            .await
            .map_err(unavailable)?;
        let learners: BTreeSet<u64> = members
            .iter()
            .filter(|m| !m.voter && gone.contains(&m.id))
            .map(|m| m.id)
            .collect();
        if !learners.is_empty() {
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(learners), false)
                .await
                .map_err(unavailable)?;
        }
        tracing::info!(raft = raft_address, "removed from the quorum");
        Ok(())
    }

    /// `quorum elect`: hands the leadership to the voter at `raft_address`.
    /// This master stops serving, waits until the target has every entry,
    /// stops its heartbeats until the followers' leader lease has run out
    /// (openraft's followers refuse to vote while it runs), then tells the
    /// target to stand; it serves again if the target did not take over.
    pub async fn transfer_leadership(&self, raft_address: &str) -> Result<(), AlluxioError> {
        if !self.is_serving() {
            return Err(AlluxioError::Unavailable(self.not_leader().0));
        }
        let target = self
            .members()
            .into_iter()
            .find(|m| m.voter && m.raft_address == raft_address)
            .ok_or_else(|| {
                AlluxioError::NotFound(format!(
                    "no voter of the quorum has the Raft address {raft_address}"
                ))
            })?;
        if target.id == self.settings.me {
            return Ok(());
        }
        self.transferring.store(true, Ordering::Release);
        // Also when the caller gives up and this future is dropped.
        let _resume = ResumeLeading(self);
        self.hand_over(target.id).await
    }

    async fn hand_over(&self, target: u64) -> Result<(), AlluxioError> {
        let election = self.settings.election_timeout;
        let mut metrics = self.raft.metrics();
        let caught_up = metrics.wait_for(|m| {
            let last = m.last_log_index;
            m.replication
                .as_ref()
                .and_then(|r| r.get(&target).cloned().flatten())
                .is_some_and(|l| Some(l.index) >= last)
        });
        if tokio::time::timeout(election * 10, caught_up)
            .await
            .is_err()
        {
            return Err(AlluxioError::FailedPrecondition(format!(
                "member {target} has not caught up with the leader's log; leadership stays"
            )));
        }
        self.raft.runtime_config().heartbeat(false);
        // openraft's leader lease is election_timeout_max (2 x ours).
        tokio::time::sleep(election * 2 + self.settings.heartbeat_interval).await;
        let address = self
            .member(target)
            .map(|m| m.raft_address)
            .unwrap_or_default();
        for _ in 0..4 {
            if let Err(e) = self.network.elect_now(&address, target).await {
                tracing::warn!(target, error = %e, "cannot ask the member to stand for election");
            }
            let elected = metrics.wait_for(|m| m.current_leader == Some(target));
            if tokio::time::timeout(election * 2, elected).await.is_ok() {
                tracing::info!(target, "handed the leadership over");
                return Ok(());
            }
        }
        Err(AlluxioError::Unavailable(format!(
            "member {target} did not take the leadership over; this master goes on leading"
        )))
    }
}

/// Keeps the membership moving on the leader: learners that have caught
/// up become voters.
pub async fn run_upkeep(journal: std::sync::Arc<ReplicatedJournal>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if journal.raft.metrics().borrow().state == openraft::ServerState::Shutdown {
            return;
        }
        if journal.is_serving() {
            if let Err(e) = journal.promote_learners().await {
                tracing::warn!(error = %e, "cannot promote a learner yet");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_reads_what_older_journals_wrote_and_round_trips() {
        // openraft's BasicNode { addr } encodes as its one string.
        let old = bincode::serialize(&openraft::BasicNode::new("h1:19200")).unwrap();
        let node: MasterNode = bincode::deserialize(&old).unwrap();
        assert_eq!(node, MasterNode::new("h1:19200", ""));
        assert_eq!(bincode::serialize(&node).unwrap(), old);
        let new = MasterNode::new("h4:19200", "h4:19998");
        let bytes = bincode::serialize(&new).unwrap();
        assert_eq!(bincode::deserialize::<MasterNode>(&bytes).unwrap(), new);
        // Snapshot metadata is JSON.
        let old = serde_json::to_vec(&openraft::BasicNode::new("h1:19200")).unwrap();
        let node: MasterNode = serde_json::from_slice(&old).unwrap();
        assert_eq!(node, MasterNode::new("h1:19200", ""));
        let text = serde_json::to_vec(&new).unwrap();
        assert_eq!(serde_json::from_slice::<MasterNode>(&text).unwrap(), new);
    }

    #[test]
    fn only_raft_files_count_as_raft_state() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_raft_state(dir.path()));
        std::fs::write(dir.path().join(RECORD_FILE), b"x").unwrap();
        assert!(!has_raft_state(dir.path()));
        std::fs::write(dir.path().join("raft-vote"), b"x").unwrap();
        assert!(has_raft_state(dir.path()));
    }
}
