//! Fault-tolerant masters: three masters in one process replicating the
//! journal with Raft over real gRPC on 127.0.0.1. Only the leader serves;
//! clients that know every master follow it through failovers; no
//! acknowledged change is lost; lagging and wiped members catch up.

use alluxio_client::MasterClient;
use alluxio_common::auth::Credentials;
use alluxio_common::AlluxioError;
use alluxio_master::MasterServer;
use alluxio_testkit::quorum::{allow_slow_failovers, mkdir, Quorum};
use std::time::Duration;

async fn names(client: &MasterClient, path: &str) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_status(path, false, Some(-1))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    names.sort();
    names
}

/// A client of exactly one master (no failover).
async fn client_of(q: &Quorum, i: usize) -> MasterClient {
    let c = q.client_config();
    MasterClient::connect(
        &q.master(i).rpc_addr.to_string(),
        Duration::from_secs(10),
        Credentials::for_client(&c).unwrap(),
    )
    .await
    .unwrap()
}

/// Inode count and last applied journal sequence of master `i`.
fn fingerprint(m: &MasterServer) -> (usize, u64) {
    let state = m.fs.read_state();
    (state.tree.len(), state.last_sequence)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_refuse_with_the_leaders_address_and_the_leaders_loss_loses_nothing() {
    allow_slow_failovers();
    let mut q = Quorum::start(3, |_| {}).await;
    let client = q.client().await;
    for i in 0..20 {
        mkdir(&client, &format!("/before/d{i:02}")).await.unwrap();
    }

    let leader = q.wait_for_leader().await;
    let follower = (leader + 1) % 3;
    // What a follower answers, seen raw: Unavailable naming the leader,
    // and the leader's address in the metadata.
    let leader_address = q.configs[leader].master.rpc_addresses[leader].clone();
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", q.master(follower).rpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let credentials = Credentials::for_client(&q.client_config()).unwrap();
    let mut raw = alluxio_proto::grpc::file_system_master_client::FileSystemMasterClient::new(
        credentials.attach(channel),
    );
    let status = raw
        .get_status(alluxio_proto::grpc::GetStatusRequest {
            path: "/before".into(),
            common: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(
        status.message().contains("not the leader") && status.message().contains(&leader_address),
        "{status:?}"
    );
    assert_eq!(
        status
            .metadata()
            .get(alluxio_common::rpc::LEADER_HEADER)
            .unwrap()
            .to_str()
            .unwrap(),
        leader_address
    );
    // A client that knows only that follower (say, a Service address)
    // follows the hint to the leader.
    let info = client_of(&q, follower)
        .await
        .get_status("/before", Some(-1))
        .await
        .unwrap();
    assert_eq!(info.name, "before");
    // Every master applied every acknowledged change.
    q.wait_converged().await;

    q.stop(leader).await;
    // The same client carries on with the new leader.
    mkdir(&client, "/after").await.unwrap();
    let new_leader = q.wait_for_leader().await;
    assert_ne!(new_leader, leader);
    let before = names(&client, "/before").await;
    assert_eq!(
        before,
        (0..20).map(|i| format!("d{i:02}")).collect::<Vec<_>>()
    );
    assert_eq!(names(&client, "/").await, vec!["after", "before"]);

    // The old leader comes back as a follower and catches up.
    q.restart(leader).await;
    mkdir(&client, "/later").await.unwrap();
    q.wait_converged().await;
    let prints: Vec<_> = q.masters.iter().flatten().map(fingerprint).collect();
    assert!(prints.iter().all(|p| *p == prints[0]), "{prints:?}");
    for m in q.masters.into_iter().flatten() {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_majority_writes_are_refused_and_resume_when_one_returns() {
    allow_slow_failovers();
    let mut q = Quorum::start(3, |_| {}).await;
    let client = q.client().await;
    mkdir(&client, "/kept").await.unwrap();
    let leader = q.wait_for_leader().await;
    let follower = (leader + 1) % 3;
    let last = (leader + 2) % 3;
    q.stop(follower).await;
    q.stop(leader).await;

    // The one master left cannot commit: its client hears Unavailable.
    let lone = client_of(&q, last).await;
    let err = mkdir(&lone, "/lost").await.unwrap_err();
    assert!(matches!(err, AlluxioError::Unavailable(_)), "{err:?}");

    q.restart(follower).await;
    mkdir(&client, "/resumed").await.unwrap();
    assert_eq!(names(&client, "/").await, vec!["kept", "resumed"]);
    for m in q.masters.into_iter().flatten() {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_follower_installs_a_snapshot_after_the_log_was_purged() {
    allow_slow_failovers();
    let mut q = Quorum::start(3, |c| {
        c.master.embedded_journal.snapshot_period_entries = 20
    })
    .await;
    let client = q.client().await;
    let leader = q.wait_for_leader().await;
    let lagging = (leader + 1) % 3;
    q.stop(lagging).await;
    for i in 0..150 {
        mkdir(&client, &format!("/bulk/d{i:03}")).await.unwrap();
    }
    let leader_journal = q.master(leader).replicated().unwrap().clone();
    alluxio_testkit::eventually(
        "the leader to snapshot and purge",
        Duration::from_secs(30),
        || async {
            let purged = leader_journal
                .raft
                .metrics()
                .borrow()
                .purged
                .map(|l| l.index);
            purged.filter(|p| *p > 50)
        },
    )
    .await;

    q.restart(lagging).await;
    let journal = q.master(lagging).replicated().unwrap().clone();
    alluxio_testkit::eventually("a snapshot install", Duration::from_secs(30), || async {
        journal.replica.snapshot_index().filter(|i| *i > 50)
    })
    .await;
    q.wait_converged().await;
    let prints: Vec<_> = q.masters.iter().flatten().map(fingerprint).collect();
    assert!(prints.iter().all(|p| *p == prints[0]), "{prints:?}");
    let metrics = |i: usize| {
        let web = q.master(i).web_addr.to_string();
        async move {
            alluxio_testkit::http_get::http_get(&web, "/metrics")
                .await
                .unwrap()
                .1
        }
    };
    let follower_metrics = metrics(lagging).await;
    assert!(
        follower_metrics.contains("alluxio_master_raft_snapshot_installs_total 1")
            && follower_metrics.contains("alluxio_master_raft_is_leader 0"),
        "{follower_metrics}"
    );
    let leader_metrics = metrics(leader).await;
    assert!(
        leader_metrics.contains("alluxio_master_raft_is_leader 1"),
        "{leader_metrics}"
    );
    assert!(
        leader_metrics.contains("alluxio_master_raft_follower_lag{"),
        "{leader_metrics}"
    );
    // The caught-up follower can lead: stop the others' leader.
    q.stop(leader).await;
    let new_leader = q.wait_for_leader().await;
    assert_eq!(names(&client, "/bulk").await.len(), 150);
    assert_ne!(new_leader, leader);
    for m in q.masters.into_iter().flatten() {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_with_a_wiped_journal_rejoins_without_harm() {
    allow_slow_failovers();
    let mut q = Quorum::start(3, |_| {}).await;
    let client = q.client().await;
    for i in 0..10 {
        mkdir(&client, &format!("/x/d{i}")).await.unwrap();
    }
    let leader = q.wait_for_leader().await;
    let wiped = (leader + 1) % 3;
    q.stop(wiped).await;
    let dir = q.configs[wiped].master.journal.dir.clone();
    std::fs::remove_dir_all(&dir).unwrap();
    q.restart(wiped).await;
    mkdir(&client, "/y").await.unwrap();
    q.wait_converged().await;
    let prints: Vec<_> = q.masters.iter().flatten().map(fingerprint).collect();
    assert!(prints.iter().all(|p| *p == prints[0]), "{prints:?}");
    assert_eq!(
        q.wait_for_leader().await,
        leader,
        "the leader kept its role"
    );
    for m in q.masters.into_iter().flatten() {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_log_disk_stops_that_master_and_the_others_go_on_without_losing_a_change() {
    allow_slow_failovers();
    let Some(disk) = alluxio_testkit::small_disk::SmallDisk::mount(4 << 20) else {
        return;
    };
    // Master 0's journal (Raft log, vote, snapshots) is on the small disk.
    let on_disk = disk.path().join("journal-0");
    let mut q = Quorum::start(3, |c| {
        if c.master.journal.dir.ends_with("journal-0") {
            c.master.journal.dir = on_disk.clone();
        }
    })
    .await;
    let client = q.client().await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let path = format!("/before/d{i:02}");
        mkdir(&client, &path).await.unwrap();
        acknowledged.push(path);
    }
    q.wait_converged().await;

    // The disk fills up; the group goes on taking changes while master 0
    // finds out (leader or follower, whichever it is).
    let filler = disk.fill("filler");
    let failed = || q.master(0).fs.journal_health().failure();
    let mut i = 0;
    while failed().is_none() {
        assert!(i < 5_000, "master 0 never noticed its full disk");
        let path = format!("/during/d{i:04}");
        match mkdir(&client, &path).await {
            // Committed by the others even if master 0, leading, could
            // not write it itself (and its client tried again).
            Ok(()) | Err(AlluxioError::AlreadyExists(_)) => acknowledged.push(path),
            Err(e) => panic!("{path}: {e:?}"),
        }
        i += 1;
    }
    let why = failed().unwrap();
    assert!(why.contains("Raft log failed"), "{why}");
    // Master 0 says why and serves nothing; the other two go on.
    let web = format!("127.0.0.1:{}", q.master(0).web_addr.port());
    let (code, body) = alluxio_testkit::http_get::http_get(&web, "/readyz")
        .await
        .unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("Raft log failed"), "{body}");
    let (_, metrics) = alluxio_testkit::http_get::http_get(&web, "/metrics")
        .await
        .unwrap();
    assert!(
        metrics.contains("alluxio_master_journal_failed 1"),
        "{metrics}"
    );
    let refused = client_of(&q, 0)
        .await
        .get_status("/before", Some(-1))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, AlluxioError::Unavailable(m) if m.contains("Raft log")),
        "{refused:?}"
    );
    for i in 0..20 {
        let path = format!("/after/d{i:02}");
        mkdir(&client, &path).await.unwrap();
        acknowledged.push(path);
    }

    // Space freed and master 0 restarted: it catches up, and every master
    // has every acknowledged change.
    std::fs::remove_file(filler).unwrap();
    q.restart(0).await;
    mkdir(&client, "/later").await.unwrap();
    q.wait_converged().await;
    let prints: Vec<_> = q.masters.iter().flatten().map(fingerprint).collect();
    assert!(prints.iter().all(|p| *p == prints[0]), "{prints:?}");
    {
        let state = q.master(0).fs.read_state();
        for path in &acknowledged {
            let path = alluxio_common::AlluxioPath::new(path).unwrap();
            assert!(state.tree.lookup(&path).is_some(), "{path:?} lost");
        }
    }
    for m in q.masters.into_iter().flatten() {
        m.shutdown().await;
    }
}
