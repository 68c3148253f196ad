//! The master's Prometheus metrics and the helper that times every RPC.

use crate::fs_master::FileSystemMaster;
use alluxio_common::AlluxioError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::Instrument;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub method: &'static str,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemberLabels {
    pub member: String,
}

/// The Raft group's gauges (fault-tolerant mode; absent otherwise).
#[derive(Default)]
struct RaftGauges {
    is_leader: Gauge,
    term: Gauge,
    last_log_index: Gauge,
    applied_index: Gauge,
    snapshot_index: Gauge,
    follower_lag: Family<MemberLabels, Gauge>,
    elections_won: Counter,
    snapshot_installs: Counter,
    seen_elections: AtomicU64,
    seen_installs: AtomicU64,
}

impl RaftGauges {
    fn register(&self, registry: &mut Registry) {
        let gauges: [(&str, &str, &Gauge); 5] = [
            (
                "alluxio_master_raft_is_leader",
                "1 while this master is the serving leader",
                &self.is_leader,
            ),
            ("alluxio_master_raft_term", "Current Raft term", &self.term),
            (
                "alluxio_master_raft_last_log_index",
                "Index of the last Raft log entry",
                &self.last_log_index,
            ),
            (
                "alluxio_master_raft_applied_index",
                "Index of the last applied Raft log entry",
                &self.applied_index,
            ),
            (
                "alluxio_master_raft_snapshot_index",
                "Last log index covered by the snapshot",
                &self.snapshot_index,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "alluxio_master_raft_follower_lag",
            "Log entries a member is behind the leader (on the leader)",
            self.follower_lag.clone(),
        );
        registry.register(
            "alluxio_master_raft_elections_won",
            "Times this master became the serving leader",
            self.elections_won.clone(),
        );
        registry.register(
            "alluxio_master_raft_snapshot_installs",
            "Snapshots this master installed from a leader",
            self.snapshot_installs.clone(),
        );
    }

    fn refresh(&self, journal: &crate::raft::ReplicatedJournal) {
        let m = journal.raft.metrics().borrow().clone();
        self.is_leader.set(i64::from(journal.is_serving()));
        self.term.set(m.current_term as i64);
        let last = m.last_log_index.unwrap_or(0);
        self.last_log_index.set(last as i64);
        self.applied_index
            .set(m.last_applied.map(|l| l.index).unwrap_or(0) as i64);
        self.snapshot_index
            .set(m.snapshot.map(|l| l.index).unwrap_or(0) as i64);
        self.follower_lag.clear();
        let members = journal.members();
        for (id, matched) in m.replication.iter().flatten() {
            if let Some(member) = members.iter().find(|m| m.id == *id) {
                let lag = last.saturating_sub(matched.map(|l| l.index).unwrap_or(0));
                self.follower_lag
                    .get_or_create(&MemberLabels {
                        member: member.raft_address.clone(),
                    })
                    .set(lag as i64);
            }
        }
        let won = journal.elections_won();
        let prev = self.seen_elections.swap(won, Ordering::Relaxed);
        self.elections_won.inc_by(won.saturating_sub(prev));
        let installs = journal.replica.snapshot_installs();
        let prev = self.seen_installs.swap(installs, Ordering::Relaxed);
        self.snapshot_installs.inc_by(installs.saturating_sub(prev));
    }
}

pub struct MasterMetrics {
    rpc_duration: Family<MethodLabels, Histogram>,
    rpc_errors: Family<ErrorLabels, Counter>,
    files: Gauge,
    directories: Gauge,
    mounts: Gauge,
    journal_entries_since_checkpoint: Gauge,
    journal_failed: Gauge,
    journal_flushes: Counter,
    journal_entries: Counter,
    workers: Family<StateLabels, Gauge>,
    syncs_in_progress: Gauge,
    sync_entries: Counter,
    seen_sync_entries: AtomicU64,
    seen_flushes: AtomicU64,
    seen_entries: AtomicU64,
    raft: RaftGauges,
}

impl MasterMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = MasterMetrics {
            rpc_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 4.0, 10))
            }),
            rpc_errors: Family::default(),
            files: Gauge::default(),
            directories: Gauge::default(),
            mounts: Gauge::default(),
            journal_entries_since_checkpoint: Gauge::default(),
            journal_failed: Gauge::default(),
            journal_flushes: Counter::default(),
            journal_entries: Counter::default(),
            workers: Family::default(),
            syncs_in_progress: Gauge::default(),
            sync_entries: Counter::default(),
            seen_sync_entries: AtomicU64::new(0),
            seen_flushes: AtomicU64::new(0),
            seen_entries: AtomicU64::new(0),
            raft: RaftGauges::default(),
        };
        m.raft.register(registry);
        registry.register(
            "alluxio_master_rpc_duration_seconds",
            "Time to answer an RPC, by method",
            m.rpc_duration.clone(),
        );
        registry.register(
            "alluxio_master_rpc_errors",
            "RPCs that failed, by method and gRPC code",
            m.rpc_errors.clone(),
        );
        registry.register(
            "alluxio_master_files",
            "Files in the namespace",
            m.files.clone(),
        );
        registry.register(
            "alluxio_master_directories",
            "Directories in the namespace",
            m.directories.clone(),
        );
        registry.register(
            "alluxio_master_mount_points",
            "Entries in the mount table",
            m.mounts.clone(),
        );
        registry.register(
            "alluxio_master_journal_entries_since_checkpoint",
            "Journal entries written since the last checkpoint",
            m.journal_entries_since_checkpoint.clone(),
        );
        registry.register(
            "alluxio_master_journal_failed",
            "1 once a journal write or fsync failed (a full disk): the master answers nothing until restarted",
            m.journal_failed.clone(),
        );
        registry.register(
            "alluxio_master_journal_flushes",
            "fsync batches of the journal (group commit: many appends share one)",
            m.journal_flushes.clone(),
        );
        registry.register(
            "alluxio_master_journal_appends",
            "Operations whose journal entries were flushed",
            m.journal_entries.clone(),
        );
        registry.register(
            "alluxio_master_workers",
            "Registered workers by state",
            m.workers.clone(),
        );
        registry.register(
            "alluxio_master_metadata_syncs_in_progress",
            "Directory listings from the UFS running now",
            m.syncs_in_progress.clone(),
        );
        registry.register(
            "alluxio_master_metadata_sync_entries",
            "UFS entries applied by directory metadata syncs",
            m.sync_entries.clone(),
        );
        m
    }

    /// Copies current values from the master into the gauges.
    pub fn refresh(&self, fs: &FileSystemMaster) {
        {
            let state = fs.read_state();
            self.files.set(state.tree.file_count() as i64);
            self.directories.set(state.tree.directory_count() as i64);
            self.mounts.set(state.mounts.len() as i64);
        }
        self.journal_failed.set(i64::from(!fs.healthy()));
        let journal = fs.journal();
        self.journal_entries_since_checkpoint
            .set(journal.entries_since_checkpoint() as i64);
        let flushes = journal.counters().flushes.load(Ordering::Relaxed);
        let prev = self.seen_flushes.swap(flushes, Ordering::Relaxed);
        self.journal_flushes.inc_by(flushes.saturating_sub(prev));
        let entries = journal.counters().entries_written.load(Ordering::Relaxed);
        let prev = self.seen_entries.swap(entries, Ordering::Relaxed);
        self.journal_entries.inc_by(entries.saturating_sub(prev));
        if let Some(journal) = journal.replicated() {
            self.raft.refresh(journal);
        }
        self.syncs_in_progress.set(fs.syncs.in_progress() as i64);
        let applied = fs.syncs.entries_applied();
        let prev = self.seen_sync_entries.swap(applied, Ordering::Relaxed);
        self.sync_entries.inc_by(applied.saturating_sub(prev));
        let (live, lost) = fs.block_master().worker_counts();
        self.workers
            .get_or_create(&StateLabels { state: "live" })
            .set(live as i64);
        self.workers
            .get_or_create(&StateLabels { state: "lost" })
            .set(lost as i64);
    }

    /// Runs one RPC inside a tracing span, records its duration and, on
    /// failure, its error code.
    pub async fn observe<T>(
        &self,
        method: &'static str,
        fut: impl Future<Output = Result<T, AlluxioError>>,
    ) -> Result<tonic::Response<T>, tonic::Status> {
        let start = Instant::now();
        let result = fut.instrument(tracing::debug_span!("rpc", method)).await;
        self.rpc_duration
            .get_or_create(&MethodLabels { method })
            .observe(start.elapsed().as_secs_f64());
        match result {
            Ok(v) => Ok(tonic::Response::new(v)),
            Err(e) => {
                tracing::debug!(method, error = %e, "rpc failed");
                self.rpc_errors
                    .get_or_create(&ErrorLabels {
                        method,
                        code: format!("{:?}", e.code()),
                    })
                    .inc();
                Err(e.into())
            }
        }
    }
}
