//! Fault-tolerant masters: a member that was down while a million inodes
//! were created comes back after the leader purged its log, so it must
//! install a snapshot of the whole namespace (streamed in chunks) and
//! catch up from the log. Measured: the time until it has every change,
//! and the latency of creates through the group meanwhile against the
//! same creates before it came back (same run).

use crate::checkpoint::{Sample, TimedCreates, CREATORS};
use crate::master::populate;
use crate::report::{percentile_ms, write, Bar};
use alluxio_client::MasterClient;
use alluxio_common::auth::Credentials;
use alluxio_proto::grpc::CreateDirectoryRequest;
use alluxio_testkit::eventually;
use alluxio_testkit::quorum::Quorum;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn snapshot_catch_up(out: &Path, files: u64, seconds: f64) {
    alluxio_common::rpc::set_failover_timeout(Duration::from_secs(60));
    // Raft entries carry many journal entries each (group commit): a
    // snapshot every 20,000 of them, so that the log is purged.
    let mut q = Quorum::start(3, |c| {
        c.master.embedded_journal.snapshot_period_entries = 20_000;
    })
    .await;
    let leader = q.wait_for_leader().await;
    let lagging = (leader + 1) % 3;
    q.stop(lagging).await;
    let journal = q.master(leader).replicated().expect("a Raft group").clone();
    let left_at = journal.replica.applied_index();
    let started = Instant::now();
    let _more = populate(&q.master(leader).fs, files).await;
    let populate_secs = started.elapsed().as_secs_f64();
    let inodes = q.master(leader).fs.read_state().tree.len();
    println!("{inodes} inodes in {populate_secs:.1} s");

    // The leader snapshots and purges its log: the stopped member can
    // only come back through a snapshot.
    eventually(
        "the leader's log purged",
        Duration::from_secs(600),
        || async {
            let purged = journal.raft.metrics().borrow().purged.map(|l| l.index)?;
            (purged > left_at).then_some(())
        },
    )
    .await;
    let raft_entries = journal.replica.applied_index();

    let cfg = q.client_config();
    let credentials = Credentials::for_client(&cfg).expect("credentials");
    let mut conns = Vec::new();
    for _ in 0..CREATORS {
        conns.push(
            MasterClient::connect(
                &cfg.master_address(),
                Duration::from_secs(30),
                credentials.clone(),
            )
            .await
            .expect("connect"),
        );
    }
    conns[0]
        .create_directory(CreateDirectoryRequest {
            path: "/j".into(),
            ..Default::default()
        })
        .await
        .expect("mkdir /j");
    let load = TimedCreates::start(Arc::new(conns), "/j");
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;

    let back = Instant::now();
    q.restart(lagging).await;
    let target = q.master(leader).fs.journal().last_sequence();
    let member = q.master(lagging);
    let snapshot_index = eventually(
        "the member to install a snapshot",
        Duration::from_secs(600),
        || async { member.replicated()?.replica.snapshot_index() },
    )
    .await;
    let installed_secs = back.elapsed().as_secs_f64();
    eventually(
        "the member to catch up",
        Duration::from_secs(600),
        || async { (member.fs.journal().last_sequence() >= target).then_some(()) },
    )
    .await;
    let caught_up = Instant::now();
    let catch_up_secs = (caught_up - back).as_secs_f64();
    let samples = load.stop().await;
    let member_inodes = member.fs.read_state().tree.len();
    let snapshot_bytes: u64 = std::fs::read_dir(&q.configs[lagging].master.journal.dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("snapshot-"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0);
    for m in q.masters.into_iter().flatten() {
        m.shutdown().await;
    }

    let latencies = |keep: &dyn Fn(&Sample) -> bool| -> Vec<Duration> {
        samples.iter().filter(|s| keep(s)).map(|s| s.1).collect()
    };
    let before = latencies(&|s| s.0 < back);
    let during = latencies(&|s| s.0 >= back && s.0 < caught_up);
    let ms = percentile_ms;
    let ratio = ms(&during, 0.99) / ms(&before, 0.99);
    write(
        out,
        "ha_snapshot_catch_up",
        "seconds",
        &[
            Bar {
                label: "back -> snapshot installed".into(),
                value: installed_secs,
            },
            Bar {
                label: "back -> caught up".into(),
                value: catch_up_secs,
            },
        ],
        json!({
            "inodes": inodes,
            "raft_entries": raft_entries,
            "member_inodes_after": member_inodes,
            "populate_seconds": populate_secs,
            "snapshot_index": snapshot_index,
            "snapshot_bytes": snapshot_bytes,
            "installed_seconds": installed_secs,
            "catch_up_seconds": catch_up_secs,
            "creators": CREATORS,
            "creates_before": before.len(),
            "creates_during": during.len(),
            "p50_ms_before": ms(&before, 0.5),
            "p50_ms_during": ms(&during, 0.5),
            "p99_ms_before": ms(&before, 0.99),
            "p99_ms_during": ms(&during, 0.99),
            "ratio_p99": ratio,
            "note": "3 masters in one process on 2 cores; the member was stopped while the inodes were created, and the leader's log was purged behind a snapshot",
        }),
    );
}
