//! Membership changes of fault-tolerant masters (three or four masters in
//! one process over real gRPC on 127.0.0.1): leadership handed to a chosen
//! member, a new master joining as a learner and becoming a voter, a
//! member removed, a master configured for another group refused at
//! start, and a single master's journal taken over by a group it founds.

use alluxio_client::MasterClient;
use alluxio_common::auth::Credentials;
use alluxio_common::AlluxioError;
use alluxio_master::MasterServer;
use alluxio_proto::grpc::GetQuorumInfoResponse;
use alluxio_testkit::quorum::{allow_slow_failovers, mkdir, Quorum};
use std::time::Duration;

async fn count(client: &MasterClient, path: &str) -> usize {
    client
        .list_status(path, false, Some(-1))
        .await
        .unwrap()
        .len()
}

/// The group as the leader sees it.
async fn leaders_view(q: &Quorum) -> GetQuorumInfoResponse {
    let leader = q.wait_for_leader().await;
    let journal = q.master(leader).fs.journal().replicated().unwrap();
    journal.quorum_info().await
}

fn roles(info: &GetQuorumInfoResponse) -> Vec<(String, String)> {
    let mut roles: Vec<_> = info
        .members
        .iter()
        .map(|m| (m.raft_address.clone(), m.role.clone()))
        .collect();
    roles.sort();
    roles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leadership_moves_to_the_member_named_and_nothing_is_lost() {
    allow_slow_failovers();
    let q = Quorum::start(3, |_| {}).await;
    let client = q.client().await;
    for i in 0..20 {
        mkdir(&client, &format!("/a/d{i}")).await.unwrap();
    }
    let leader = q.wait_for_leader().await;
    // Naming the leader itself changes nothing; an unknown address is refused.
    client
        .transfer_leadership(&q.raft_address(leader))
        .await
        .unwrap();
    assert_eq!(q.wait_for_leader().await, leader);
    let unknown = client.transfer_leadership("127.0.0.1:1").await;
    assert!(
        matches!(unknown, Err(AlluxioError::NotFound(_))),
        "{unknown:?}"
    );

    for hop in 1..=2 {
        let from = q.wait_for_leader().await;
        let target = (from + 1) % 3;
        client
            .transfer_leadership(&q.raft_address(target))
            .await
            .unwrap();
        assert_eq!(q.wait_for_leader().await, target, "hop {hop}");
        mkdir(&client, &format!("/a/after{hop}")).await.unwrap();
    }
    assert_eq!(count(&client, "/a").await, 22);
    q.wait_converged().await;
    for m in q.masters.into_iter().flatten() {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_master_joins_as_a_learner_then_votes_and_a_member_is_removed() {
    allow_slow_failovers();
    let mut q = Quorum::start(3, |_| {}).await;
    let client = q.client().await;
    for i in 0..30 {
        mkdir(&client, &format!("/b/d{i}")).await.unwrap();
    }
    let leader = q.wait_for_leader().await;
    let newcomer = q.add_master().await;
    let new_address = q.raft_address(newcomer);
    // It catches up and becomes a voter by itself.
    alluxio_testkit::eventually("the newcomer to vote", Duration::from_secs(30), || async {
        let info = leaders_view(&q).await;
        let member = info
            .members
            .iter()
            .find(|m| m.raft_address == new_address)?;
        (info.members.len() == 4 && member.role == "FOLLOWER").then_some(())
    })
    .await;
    mkdir(&client, "/b/with-four").await.unwrap();
    q.wait_converged().await;
    assert_eq!(
        q.master(newcomer).fs.read_state().tree.len(),
        q.master(leader).fs.read_state().tree.len()
    );

    // The leader cannot remove itself; an unknown address is not found.
    let own = client.remove_quorum_member(&q.raft_address(leader)).await;
    assert!(
        matches!(own, Err(AlluxioError::FailedPrecondition(_))),
        "{own:?}"
    );
    let unknown = client.remove_quorum_member("127.0.0.1:1").await;
    assert!(
        matches!(unknown, Err(AlluxioError::NotFound(_))),
        "{unknown:?}"
    );

    // Remove one old follower: three voters remain (the leader, the other
    // old follower, the newcomer).
    let removed = (0..3).find(|i| *i != leader).unwrap();
    let kept = (0..3).find(|i| *i != leader && *i != removed).unwrap();
    client
        .remove_quorum_member(&q.raft_address(removed))
        .await
        .unwrap();
    let info = leaders_view(&q).await;
    assert_eq!(info.members.len(), 3, "{:?}", roles(&info));
    assert!(info
        .members
        .iter()
        .all(|m| m.raft_address != q.raft_address(removed)));
    q.stop(removed).await;

    // With the other old follower down too, the leader and the newcomer
    // are a majority of the three voters: writes go on only if the
    // newcomer really votes.
    q.stop(kept).await;
    mkdir(&client, "/b/after-removal").await.unwrap();
    assert_eq!(count(&client, "/b").await, 32);
    for m in q.masters.into_iter().flatten() {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_configured_for_another_group_is_refused_at_start_naming_the_members() {
    allow_slow_failovers();
    let q = Quorum::start(3, |_| {}).await;
    let leader = q.wait_for_leader().await;
    // A fourth master that believes the group is itself and master 0.
    let mut stray = alluxio_testkit::quorum::quorum_configs(q.dir.path(), 1).remove(0);
    stray.master.journal.dir = q.dir.path().join("journal-stray");
    stray.master.embedded_journal.addresses = vec![
        format!("127.0.0.1:{}", stray.master.embedded_journal.port),
        q.raft_address(0),
    ];
    stray.master.rpc_addresses.clear();
    let refused = MasterServer::start(&stray).await.err().expect("refused");
    let message = refused.to_string();
    for missing in [q.raft_address(1), q.raft_address(2)] {
        assert!(message.contains(&missing), "{message}");
    }
    assert_eq!(q.wait_for_leader().await, leader);
    assert_eq!(leaders_view(&q).await.members.len(), 3);
    mkdir(&q.client().await, "/still-fine").await.unwrap();
    for m in q.masters.into_iter().flatten() {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_masters_journal_is_taken_over_by_a_group_it_founds_alone() {
    allow_slow_failovers();
    let dir = tempfile::tempdir().unwrap();
    let mut config = alluxio_testkit::quorum::quorum_configs(dir.path(), 1).remove(0);
    let own_raft = config.master.embedded_journal.addresses.clone();
    // A single master (no embedded journal) writes a namespace.
    config.master.embedded_journal.addresses.clear();
    let single = MasterServer::start(&config).await.unwrap();
    let connect = |c: &alluxio_common::config::AlluxioConfig| {
        let c = c.clone();
        async move {
            MasterClient::connect(
                &c.master_address(),
                Duration::from_secs(10),
                Credentials::for_client(&c).unwrap(),
            )
            .await
            .unwrap()
        }
    };
    let client = connect(&config).await;
    for i in 0..25 {
        mkdir(&client, &format!("/old/d{i}")).await.unwrap();
    }
    single.shutdown().await;

    // Refused as a founder of a larger group: it would not be the only one
    // to initialise it.
    let mut too_many = config.clone();
    too_many.master.embedded_journal.addresses = own_raft.clone();
    too_many
        .master
        .embedded_journal
        .addresses
        .push("127.0.0.1:1".to_string());
    too_many.master.rpc_addresses.clear();
    let refused = MasterServer::start(&too_many).await.err().expect("refused");
    assert!(
        refused.to_string().contains("single master's journal"),
        "{refused}"
    );

    // Alone, it takes the journal over and leads a group of one ...
    config.master.embedded_journal.addresses = own_raft;
    let journal_dir = config.master.journal.dir.clone();
    let mut q = Quorum {
        masters: vec![Some(MasterServer::start(&config).await.unwrap())],
        configs: vec![config],
        dir,
    };
    q.wait_for_leader().await;
    assert!(journal_dir.join("single-master.imported").is_dir());
    let client = q.client().await;
    assert_eq!(count(&client, "/old").await, 25);
    mkdir(&client, "/old/after-takeover").await.unwrap();
    // ... which two more masters join.
    let second = q.add_master().await;
    let third = q.add_master().await;
    alluxio_testkit::eventually("three voters", Duration::from_secs(30), || async {
        let info = leaders_view(&q).await;
        (info.members.len() == 3 && info.members.iter().all(|m| m.role != "LEARNER")).then_some(())
    })
    .await;
    q.wait_converged().await;
    for joined in [second, third] {
        assert_eq!(
            q.master(joined).fs.read_state().tree.len(),
            q.master(0).fs.read_state().tree.len()
        );
    }
    // The first master restarts from its snapshot and log as a member.
    q.restart(0).await;
    let client = connect(&q.configs[2]).await;
    mkdir(&client, "/old/after-restart").await.unwrap();
    assert_eq!(count(&client, "/old").await, 27);
    for m in q.masters.into_iter().flatten() {
        m.shutdown().await;
    }
}
