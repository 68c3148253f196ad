//! Fault-tolerant mode: three (or five) masters replicate the journal with
//! Raft (openraft), and only the leader serves.
//!
//! - `log_store`: the Raft log on disk (the journal's framing), the vote;
//! - `state_machine`: committed entries applied to `MasterState`, snapshots
//!   that are checkpoints;
//! - `network`: Raft messages over gRPC between masters;
//! - `membership`: who is in the group, joining it, membership changes and
//!   leadership transfer;
//! - `takeover`: a single master's journal becoming a group's first snapshot;
//! - `status`: the group as `fsadmin journal quorum info` shows it;
//! - this module: configuration, the write path (group-committed
//!   proposals), leadership (who serves, the read lease) and start-up.
//!
//! The write path keeps the single master's shape: an operation applies
//! its journal entries to the state under the write lock and hands them
//! over in that order; here a proposer task packs everything waiting into
//! one Raft entry, and the operation is answered once that entry is
//! committed (on a majority's disks). Reads are linearizable: the leader
//! serves them only while it holds a lease a quorum granted it within the
//! last `election_timeout` (followers do not vote for anyone else during
//! that time, and a restarted master waits that long before it votes),
//! otherwise after a quorum round trip; and a read that may have seen
//! entries not yet committed waits until they are.

pub mod log_store;
pub mod membership;
pub mod network;
pub mod state_machine;
mod status;
mod takeover;

use crate::journal::seal::JournalKey;
use crate::journal::{JournalCounters, JournalError, JournalHealth, PendingFlush};
use alluxio_common::config::AlluxioConfig;
use alluxio_common::AlluxioError;
use alluxio_proto::journal::{JournalEntry, JournalEntryBatch};
use log_store::LogStore;
use membership::{MasterNode, MemberRecord};
use openraft::{Raft, ServerState};
use prost::Message;
use serde::{Deserialize, Serialize};
use state_machine::{Replica, StateMachine};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

openraft::declare_raft_types!(
    /// The Raft types of the master's journal.
    pub TypeConfig:
        D = JournalBatch,
        R = (),
        NodeId = u64,
        Node = MasterNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The payload of one Raft entry: the journal entries of one group commit.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalBatch {
    /// The node that applied these entries before proposing them...
    pub proposer: u64,
    /// ...in this speculation epoch (see `state_machine`).
    pub epoch: u64,
    /// Sequence of the batch's last journal entry (the leader skips its
    /// own batches by it without decoding them).
    pub last_sequence: u64,
    /// A prost `JournalEntryBatch`.
    #[serde(with = "bytes_field")]
    pub entries: Vec<u8>,
}

/// `Vec<u8>` as one bincode byte string (serde's default is a sequence
/// of single bytes, one call each).
mod bytes_field {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> serde::de::Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

impl std::fmt::Debug for JournalBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "JournalBatch(proposer {}, epoch {}, {} bytes)",
            self.proposer,
            self.epoch,
            self.entries.len()
        )
    }
}

/// One master of the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// For the founders, the 1-based position in
    /// `master.embedded_journal.addresses`; a master that joined later got
    /// its id from the leader.
    pub id: u64,
    pub raft_address: String,
    /// Where its clients go (`master.rpc_addresses` at the same position,
    /// else the Raft host with this master's RPC port).
    pub rpc_address: String,
    /// False for a learner (a joining master that does not vote yet).
    pub voter: bool,
}

/// The Raft group as configured.
#[derive(Clone, Debug)]
pub struct RaftSettings {
    /// The configured masters (the founders, for a new group).
    pub members: Vec<Member>,
    /// This master's id: its configured position until `find_place` says.
    pub me: u64,
    pub dir: PathBuf,
    /// This master's client port (the fallback for members' addresses).
    pub rpc_port: u16,
    pub fsync: bool,
    pub election_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub snapshot_period_entries: u64,
    /// Seals the Raft log and snapshots when encryption at rest is on
    /// (`master.journal.encryption_key_file`, loaded by the server).
    pub journal_key: Option<Arc<JournalKey>>,
}

impl RaftSettings {
    /// The group of `master.embedded_journal.*`, or `None` for a single
    /// master. Refuses lists this master is not in, duplicates, and
    /// `rpc_addresses` that do not pair up with the Raft addresses.
    pub fn from_config(config: &AlluxioConfig) -> Result<Option<RaftSettings>, String> {
        let mc = &config.master;
        let ej = &mc.embedded_journal;
        if ej.addresses.is_empty() {
            return Ok(None);
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = ej.addresses.iter().find(|a| !seen.insert(a.as_str())) {
            return Err(format!(
                "master.embedded_journal.addresses lists {dup} twice"
            ));
        }
        if !mc.rpc_addresses.is_empty() && mc.rpc_addresses.len() != ej.addresses.len() {
            return Err(format!(
                "master.rpc_addresses has {} entries but master.embedded_journal.addresses has {}; \
                 list every master in both, in the same order",
                mc.rpc_addresses.len(),
                ej.addresses.len()
            ));
        }
        let mut members = Vec::new();
        for (i, raft_address) in ej.addresses.iter().enumerate() {
            if split_host_port(raft_address).is_none() {
                return Err(format!(
                    "master.embedded_journal.addresses: {raft_address:?} is not host:port"
                ));
            }
            let rpc_address = mc
                .rpc_addresses
                .get(i)
                .cloned()
                .unwrap_or_else(|| rpc_address_beside(raft_address, mc.rpc_port));
            members.push(Member {
                id: i as u64 + 1,
                raft_address: raft_address.clone(),
                rpc_address,
                voter: true,
            });
        }
        let mine = format!("{}:{}", mc.hostname, ej.port);
        let me = members
            .iter()
            .find(|m| m.raft_address == mine)
            .map(|m| m.id)
            .ok_or_else(|| {
                format!(
                    "this master ({mine}, from master.hostname and master.embedded_journal.port) \
                     is not in master.embedded_journal.addresses [{}]",
                    ej.addresses.join(", ")
                )
            })?;
        Ok(Some(RaftSettings {
            members,
            me,
            dir: mc.journal.dir.clone(),
            rpc_port: mc.rpc_port,
            fsync: mc.journal.fsync,
            election_timeout: ej.election_timeout.0,
            heartbeat_interval: ej.heartbeat_interval.0,
            snapshot_period_entries: ej.snapshot_period_entries.max(1),
            // Read by the server when it starts (a file read, not a
            // setting's parse).
            journal_key: None,
        }))
    }

    /// The configured member list, as a group's name.
    pub fn fingerprint(&self) -> String {
        self.members
            .iter()
            .map(|m| m.raft_address.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The client address of the master at `raft_address`, for members
    /// whose membership record has none (older journals).
    fn rpc_address_of(&self, raft_address: &str) -> String {
        match self.members.iter().find(|m| m.raft_address == raft_address) {
            Some(m) => m.rpc_address.clone(),
            None => rpc_address_beside(raft_address, self.rpc_port),
        }
    }

    fn openraft_config(&self) -> Result<openraft::Config, String> {
        let election = self.election_timeout.as_millis() as u64;
        openraft::Config {
            cluster_name: "alluxio".to_string(),
            election_timeout_min: election,
            election_timeout_max: election * 2,
            heartbeat_interval: self.heartbeat_interval.as_millis() as u64,
            // Per chunk of a snapshot (4 MiB): generous, so that a big
            // snapshot on a busy machine is never cut off and retried for ever.
            install_snapshot_timeout: 30_000,
            snapshot_max_chunk_size: 4 << 20,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_period_entries),
            max_in_snapshot_log_to_keep: self.snapshot_period_entries.min(1000),
            max_payload_entries: 256,
            ..Default::default()
        }
        .validate()
        .map_err(|e| format!("embedded journal settings: {e}"))
    }

    /// Time a leader may serve reads on the strength of the last quorum
    /// acknowledgement: half of what followers wait before voting again,
    /// leaving room for clock-rate differences and scheduling delays.
    fn read_lease(&self) -> Duration {
        self.election_timeout
    }
}

/// The Raft address's host with the client port.
fn rpc_address_beside(raft_address: &str, rpc_port: u16) -> String {
    let host = split_host_port(raft_address).map_or(raft_address, |(h, _)| h);
    format!("{host}:{rpc_port}")
}

fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// Operations waiting to be proposed, in apply order.
struct Proposal {
    entries: Vec<JournalEntry>,
    epoch: u64,
    done: oneshot::Sender<Result<(), String>>,
}

/// Largest batch of journal entries packed into one Raft entry.
const MAX_BATCH_ENTRIES: usize = 4096;
/// Raft entries proposed and not yet committed, at most.
const PROPOSALS_IN_FLIGHT: usize = 2;

/// The master's journal in fault-tolerant mode.
pub struct ReplicatedJournal {
    pub raft: Raft<TypeConfig>,
    pub replica: Arc<Replica>,
    pub settings: RaftSettings,
    pub log: LogStore,
    /// The group's name (its founding member list), on every Raft message.
    pub group: String,
    /// This master's configured addresses.
    own: Member,
    /// For messages this master sends itself (leadership transfer).
    network: network::PeerNetwork,
    /// Set while this leader hands its leadership over: it does not serve.
    transferring: AtomicBool,
    /// One membership change at a time (admit, promote, remove): each is
    /// computed from the membership as it is, and two computed from one
    /// view would give two masters one id, or drop each other's member.
    membership_changes: tokio::sync::Mutex<()>,
    proposals: mpsc::UnboundedSender<Proposal>,
    /// The term in which this node serves as leader; 0 when it does not.
    serving_term: AtomicU64,
    elections_won: AtomicU64,
    pub counters: Arc<JournalCounters>,
    /// Set when this master's log can no longer be written.
    health: Arc<JournalHealth>,
}

impl ReplicatedJournal {
    /// Opens the log and the newest snapshot, and starts the Raft node
    /// (which then talks to its peers through `network`) as the member
    /// `record` names. On its first start a founder initialises the group
    /// with the configured membership, the same on every founder, which is
    /// safe; a master that joined receives the membership from the leader.
    pub async fn open(
        mut settings: RaftSettings,
        record: MemberRecord,
        network: network::PeerNetwork,
    ) -> Result<ReplicatedJournal, JournalError> {
        let own = settings
            .member(settings.me)
            .cloned()
            .ok_or_else(|| JournalError::Failed("this master is not configured".to_string()))?;
        settings.me = record.id;
        let dir = settings.dir.clone();
        let counters = Arc::new(JournalCounters::default());
        let health = Arc::new(JournalHealth::default());
        let (log, replica) = {
            let (dir, fsync, me, counters, health, key) = (
                dir.clone(),
                settings.fsync,
                settings.me,
                counters.clone(),
                health.clone(),
                settings.journal_key.clone(),
            );
            tokio::task::spawn_blocking(move || -> Result<_, JournalError> {
                if let Err(e) = alluxio_common::io::create_private_dir(&dir) {
                    if !dir.is_dir() {
                        return Err(JournalError::io(&dir, e));
                    }
                }
                let log = LogStore::open(&dir, fsync, key, counters, health)?;
                let replica = Replica::open(me, &dir, log.clone())?;
                Ok((log, replica))
            })
            .await
            .map_err(|e| JournalError::Failed(format!("journal recovery task failed: {e}")))??
        };
        let replica = Arc::new(replica);
        let config = Arc::new(settings.openraft_config().map_err(JournalError::Failed)?);
        let raft = Raft::new(
            settings.me,
            config,
            network.clone(),
            log.clone(),
            StateMachine(replica.clone()),
        )
        .await
        .map_err(|e| JournalError::Failed(format!("cannot start Raft: {e}")))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| JournalError::Failed(e.to_string()))?;
        if !initialized && record.founder {
            let members: BTreeMap<u64, MasterNode> = settings
                .members
                .iter()
                .map(|m| (m.id, MasterNode::new(&m.raft_address, &m.rpc_address)))
                .collect();
            // Another master may have initialised the group and replicated
            // to this one in the meantime: that is fine.
            if let Err(e) = raft.initialize(members).await {
                tracing::info!(error = %e, "Raft group already initialised");
            }
        }
        let (proposals, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_proposer(raft.clone(), settings.me, rx));
        tracing::info!(
            me = settings.me,
            members = %settings.fingerprint(),
            applied = replica.applied_index(),
            "embedded journal opened"
        );
        Ok(ReplicatedJournal {
            raft,
            replica,
            settings,
            log,
            group: record.group,
            own,
            network,
            transferring: AtomicBool::new(false),
            membership_changes: tokio::sync::Mutex::new(()),
            proposals,
            serving_term: AtomicU64::new(0),
            elections_won: AtomicU64::new(0),
            counters,
            health,
        })
    }

    /// Whether this master's log still takes writes (shared with the
    /// file-system master's gate and `/readyz`).
    pub fn health(&self) -> Arc<JournalHealth> {
        self.health.clone()
    }

    /// Hands already-applied entries to the proposer; called under the
    /// state's write lock, so proposal order is apply order.
    pub fn append(&self, entries: &[JournalEntry]) -> PendingFlush {
        if entries.is_empty() {
            return PendingFlush::none();
        }
        let (done, rx) = oneshot::channel();
        let proposal = Proposal {
            entries: entries.to_vec(),
            epoch: self.replica.epoch(),
            done,
        };
        if let Err(mpsc::error::SendError(p)) = self.proposals.send(proposal) {
            let _ = p.done.send(Err("the journal proposer stopped".to_string()));
        }
        PendingFlush::from_receiver(rx)
    }

    /// Times this master became the serving leader.
    pub fn elections_won(&self) -> u64 {
        self.elections_won.load(Ordering::Relaxed)
    }

    /// Whether this master serves (it is the leader, has caught up, and
    /// is not handing its leadership over).
    pub fn is_serving(&self) -> bool {
        self.serving_term.load(Ordering::Acquire) != 0
            && self.replica.is_serving()
            && !self.transferring.load(Ordering::Acquire)
    }

    /// The group's members as its current membership (committed or not)
    /// records them, voters and learners.
    pub fn members(&self) -> Vec<Member> {
        let config = self.raft.metrics().borrow().membership_config.clone();
        let membership = config.membership();
        let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| Member {
                id: *id,
                raft_address: node.raft_address.clone(),
                rpc_address: if node.rpc_address.is_empty() {
                    self.settings.rpc_address_of(&node.raft_address)
                } else {
                    node.rpc_address.clone()
                },
                voter: voters.contains(id),
            })
            .collect()
    }

    pub fn member(&self, id: u64) -> Option<Member> {
        self.members().into_iter().find(|m| m.id == id)
    }

    /// The Raft address of the leader this master knows, if any.
    pub fn leader_raft_address(&self) -> Option<String> {
        let leader = self.raft.metrics().borrow().current_leader?;
        self.member(leader).map(|m| m.raft_address)
    }

    /// The refusal a follower gives: `Unavailable` naming the leader's
    /// client address when it is known.
    pub fn not_leader(&self) -> (String, Option<String>) {
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics
            .current_leader
            .filter(|l| *l != self.settings.me)
            .and_then(|l| self.member(l))
            .map(|m| m.rpc_address);
        let message = match &leader {
            Some(addr) => format!(
                "this master ({}) is not the leader; the leader is {addr}",
                self.my_rpc_address()
            ),
            None => format!(
                "this master ({}) is not the leader and no leader is known (election in progress, or no quorum)",
                self.my_rpc_address()
            ),
        };
        (message, leader)
    }

    pub fn my_rpc_address(&self) -> String {
        self.own.rpc_address.clone()
    }

    /// Succeeds when this master may answer a request now: it serves, and
    /// its lease is fresh or a quorum round trip confirms it still leads.
    pub async fn confirm_leadership(&self) -> Result<(), AlluxioError> {
        if !self.is_serving() {
            return Err(AlluxioError::Unavailable(self.not_leader().0));
        }
        let lease = self.settings.read_lease();
        let fresh = self
            .raft
            .metrics()
            .borrow()
            .millis_since_quorum_ack
            .is_some_and(|ms| u128::from(ms) < lease.as_millis());
        if fresh {
            return Ok(());
        }
        let confirmed = tokio::time::timeout(
            self.settings.election_timeout * 2,
            self.raft.ensure_linearizable(),
        )
        .await;
        match confirmed {
            Ok(Ok(_)) => Ok(()),
            _ => Err(AlluxioError::Unavailable(format!(
                "this master ({}) cannot reach a quorum of masters",
                self.my_rpc_address()
            ))),
        }
    }

    /// Waits until everything a read could have seen is committed.
    pub async fn await_visible_committed(&self) -> Result<(), AlluxioError> {
        let visible = self
            .replica
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .last_sequence;
        if self
            .replica
            .wait_applied(visible, self.settings.election_timeout * 4)
            .await
        {
            Ok(())
        } else {
            Err(AlluxioError::Unavailable(
                "the change this answer shows is not committed yet; retry".to_string(),
            ))
        }
    }

    /// Follows the node's role: when it becomes leader, waits until the
    /// entries of earlier terms are applied, drops any speculation left
    /// from an earlier leadership, and only then serves (`on_elected` runs
    /// first, e.g. to create the root of a new namespace). Stops serving
    /// the moment it is no longer leader.
    pub fn watch_leadership<F, Fut>(self: &Arc<Self>, on_elected: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let journal = self.clone();
        tokio::spawn(async move {
            let mut metrics = journal.raft.metrics();
            loop {
                let (state, leader, term) = {
                    let m = metrics.borrow_and_update();
                    (m.state, m.current_leader, m.current_term)
                };
                let leads = state == ServerState::Leader && leader == Some(journal.settings.me);
                let serving = journal.serving_term.load(Ordering::Acquire);
                if !leads && serving != 0 {
                    journal.serving_term.store(0, Ordering::Release);
                    journal.replica.set_serving(false);
                    tracing::warn!(term = serving, "no longer the leader; stopped serving");
                } else if leads && serving != term {
                    journal.serving_term.store(0, Ordering::Release);
                    journal.replica.set_serving(false);
                    if journal.take_over(term).await {
                        on_elected().await;
                    }
                    continue;
                }
                if state == ServerState::Shutdown || metrics.changed().await.is_err() {
                    return;
                }
            }
        })
    }

    /// Whether the state machine applies up to Raft index `index` within
    /// four election timeouts.
    async fn applied_up_to(&self, index: u64) -> bool {
        let deadline = tokio::time::Instant::now() + self.settings.election_timeout * 4;
        while self.replica.applied_index() < index {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    async fn take_over(&self, term: u64) -> bool {
        let caught_up = tokio::time::timeout(
            self.settings.election_timeout * 4,
            self.raft.ensure_linearizable(),
        )
        .await;
        if !matches!(caught_up, Ok(Ok(_))) {
            tokio::time::sleep(self.settings.heartbeat_interval).await;
            return false;
        }
        // A leader restored from its own vote after a restart (openraft
        // keeps the term) has no entry of a new term to wait for, so the
        // wait above can pass before entries already in its log, committed
        // before the restart, are applied. Serving (and speculating) on
        // that older state would number new journal entries after it and
        // clash with the log. Everything in a leader's log is committed by
        // it in time: wait until it is applied.
        if !self.applied_up_to(self.log.last_index().unwrap_or(0)).await {
            return false;
        }
        let replica = self.replica.clone();
        match tokio::task::spawn_blocking(move || replica.discard_speculation()).await {
            Ok(Ok(())) => {}
            other => {
                tracing::error!(?other, "cannot drop old speculation; not serving");
                return false;
            }
        }
        self.replica.set_serving(true);
        self.serving_term.store(term, Ordering::Release);
        self.elections_won.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            term,
            applied = self.replica.applied_index(),
            "elected leader; serving"
        );
        true
    }

    pub async fn shutdown(&self) {
        self.serving_term.store(0, Ordering::Release);
        self.replica.set_serving(false);
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "Raft shutdown");
        }
    }
}

/// Packs everything waiting into one Raft entry per round, in order.
async fn run_proposer(raft: Raft<TypeConfig>, me: u64, mut rx: mpsc::UnboundedReceiver<Proposal>) {
    // Group commit: at most this many Raft entries in flight; operations
    // that arrive meanwhile wait in the channel and go out together in the
    // next entry (one Raft entry per operation costs far more per operation).
    let window = Arc::new(tokio::sync::Semaphore::new(PROPOSALS_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = window.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        let mut count = batch[0].entries.len();
        while count < MAX_BATCH_ENTRIES {
            match rx.try_recv() {
                // One epoch per Raft entry: the skip rule is per entry.
                Ok(p) if p.epoch == batch[0].epoch => {
                    count += p.entries.len();
                    batch.push(p);
                }
                Ok(p) => {
                    propose(&raft, me, std::mem::take(&mut batch), None).await;
                    count = p.entries.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        propose(&raft, me, batch, Some(permit)).await;
    }
}

async fn propose(
    raft: &Raft<TypeConfig>,
    me: u64,
    batch: Vec<Proposal>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    if batch.is_empty() {
        return;
    }
    let epoch = batch[0].epoch;
    let mut entries = Vec::new();
    let mut dones = Vec::with_capacity(batch.len());
    for p in batch {
        entries.extend(p.entries);
        dones.push(p.done);
    }
    let payload = JournalBatch {
        proposer: me,
        epoch,
        last_sequence: entries.last().map(|e| e.sequence).unwrap_or(0),
        entries: JournalEntryBatch { entries }.encode_to_vec(),
    };
    match raft.client_write_ff(payload).await {
        Ok(committed) => {
            tokio::spawn(async move {
                let result = committed.await;
                drop(permit);
                let result = match result {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("not committed: {e}")),
                    Err(_) => Err("not committed: the Raft node stopped".to_string()),
                };
                for done in dones {
                    let _ = done.send(result.clone());
                }
            });
        }
        Err(e) => {
            for done in dones {
                let _ = done.send(Err(format!("not committed: {e}")));
            }
        }
    }
}
