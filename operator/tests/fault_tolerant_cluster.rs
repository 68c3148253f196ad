//! Fault-tolerant masters in the simulation (see `common/mod.rs`): the
//! operator's controllers build the masters' StatefulSet that the process
//! kubelet runs, and the CLI talks to the master pods.
//!
//! - `replicas: 3`: the cluster becomes Ready with one leader in its
//!   status; deleting the leader's pod keeps the cluster writable, a new
//!   leader shows in the status, and the StatefulSet's new pod rejoins.
//!   Then `replicas: 5` (two masters join by themselves) and back to 3 with
//!   the leader among the leaving two: the operator hands the leadership
//!   over and removes both from the group before their pods go, and the
//!   three that stay keep everything.
//! - `replicas: 1` -> 3 -> 1: the single master's journal (on its claim)
//!   becomes a Raft group of one, two masters join it, and the group
//!   shrinks back to one master, with the namespace kept throughout.
//!
//! Needs root (mount namespaces).

mod common;

use alluxio_operator::crd::ClusterPhase;
use common::{eventually, Simulation};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_master_pods_survive_the_deletion_of_the_leaders_pod() {
    let Some(sim) = Simulation::start("ha", 3, "EmptyDir").await else {
        return;
    };
    let status = eventually("the cluster Ready with a leader", || async {
        let s = sim.status().await?;
        (s.phase == Some(ClusterPhase::Ready)
            && s.leader.is_some()
            && s.masters.iter().filter(|m| m.role == "FOLLOWER").count() == 2)
            .then_some(s)
    })
    .await;
    let leader = status.leader.clone().unwrap();
    assert_eq!(
        status.masters.iter().filter(|m| m.role == "LEADER").count(),
        1,
        "{status:?}"
    );
    let leader_pod = (0..3)
        .map(|i| sim.master_pod(i))
        .find(|pod| leader.starts_with(&format!("{pod}.")))
        .unwrap_or_else(|| panic!("leader {leader} is not a master pod"));
    let three = sim.master_addresses(3).await.unwrap();
    sim.mkdir(&three, "/before").await;

    // The leader's pod goes; the cluster stays writable.
    sim.pods
        .delete(&leader_pod, &Default::default())
        .await
        .unwrap();
    sim.mkdir(&three, "/after").await;
    let listing = sim.ok(&three, &["fs", "ls", "/"], false).await;
    assert!(
        listing.contains("/before") && listing.contains("/after"),
        "{listing}"
    );
    let status = eventually("a new leader and three members", || async {
        let s = sim.status().await?;
        let new_leader = s.leader.clone()?;
        let followers = s.masters.iter().filter(|m| m.role == "FOLLOWER").count();
        (new_leader != leader && followers == 2).then_some(s)
    })
    .await;
    assert_eq!(status.masters.len(), 3, "{status:?}");
    let quorum = sim
        .ok(&three, &["fsadmin", "journal", "quorum", "info"], false)
        .await;
    assert_eq!(quorum.matches("LEADER").count(), 1, "{quorum}");

    // Five masters: the two new pods join the group by themselves.
    sim.scale(5).await;
    sim.members(5).await;
    // (The pods roll to the longer address lists meanwhile: a pod may be
    // between two addresses for a moment.)
    let five = sim.writable_masters(5, "/with-five").await;
    // The leader is one of the masters that will go: the operator must
    // hand the leadership over before removing it.
    sim.elect(&five, 4).await;

    // Back to three: masters 3 and 4 leave the group before their pods go.
    sim.scale(3).await;
    let status = sim.members(3).await;
    for m in &status.masters {
        assert!(
            !m.address.starts_with("ha-master-3.") && !m.address.starts_with("ha-master-4."),
            "{status:?}"
        );
    }
    sim.pods_gone(3..5).await;
    let reasons = sim.event_reasons().await;
    for reason in ["LeadershipTransferred", "MasterRemoved"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} in {reasons:?}"
        );
    }
    // Still writable, nothing lost, with the three that stay (once their
    // pods have rolled to the shorter address lists, at new addresses).
    let three = sim.writable_masters(3, "/with-three").await;
    let listing = sim.ok(&three, &["fs", "ls", "/"], false).await;
    for dir in ["/before", "/after", "/with-five", "/with-three"] {
        assert!(listing.contains(dir), "{dir} missing: {listing}");
    }
    // The pods may still be rolling (an election in between, and a rolled
    // pod has a new address): wait for a leader's view, asking the pods'
    // current addresses.
    let quorum = eventually("a leader's view of the three", || async {
        let three = sim.master_addresses(3).await?;
        let out = sim.cli(&three, &["fsadmin", "journal", "quorum", "info"]);
        let quorum = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.success() && quorum.matches("LEADER").count() == 1).then_some(quorum)
    })
    .await;
    assert!(
        !quorum.contains("ha-master-3") && !quorum.contains("ha-master-4"),
        "{quorum}"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_master_becomes_three_and_back_keeping_its_namespace() {
    let Some(sim) = Simulation::start("solo", 1, "PersistentVolumeClaim").await else {
        return;
    };
    eventually("the single master Ready", || async {
        let s = sim.status().await?;
        (s.phase == Some(ClusterPhase::Ready)).then_some(())
    })
    .await;
    let one = sim.writable_masters(1, "/single").await;
    let quorum = sim.cli(&one, &["fsadmin", "journal", "quorum", "info"]);
    let stderr = String::from_utf8_lossy(&quorum.stderr);
    assert!(stderr.contains("single master"), "{stderr}");

    // Three: the single master takes its journal over as a Raft group of
    // one, then two masters join it.
    sim.scale(3).await;
    sim.members(3).await;
    let three = sim.writable_masters(3, "/with-three").await;
    let listing = sim.ok(&three, &["fs", "ls", "/"], false).await;
    for dir in ["/single", "/with-three"] {
        assert!(listing.contains(dir), "{dir} missing: {listing}");
    }
    let quorum = sim
        .ok(&three, &["fsadmin", "journal", "quorum", "info"], false)
        .await;
    assert_eq!(quorum.matches("LEADER").count(), 1, "{quorum}");
    assert_eq!(quorum.matches("FOLLOWER").count(), 2, "{quorum}");
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(sim.client.clone(), "default");
    assert!(budgets.get_opt("solo-master").await.unwrap().is_some());
    assert!(sim
        .event_reasons()
        .await
        .iter()
        .any(|r| r == "JournalTakenOver"));

    // The leader is a master that will go: it hands over first.
    sim.elect(&three, 2).await;

    // Back to one: masters 1 and 2 leave the group before their pods go,
    // and master 0 goes on as a group of one.
    sim.scale(1).await;
    let status = sim.members(1).await;
    assert!(
        status.masters[0].address.starts_with("solo-master-0."),
        "{status:?}"
    );
    sim.pods_gone(1..3).await;
    let one = sim.writable_masters(1, "/one-again").await;
    let listing = sim.ok(&one, &["fs", "ls", "/"], false).await;
    for dir in ["/single", "/with-three", "/one-again"] {
        assert!(listing.contains(dir), "{dir} missing: {listing}");
    }
    assert!(budgets.get_opt("solo-master").await.unwrap().is_none());
    let reasons = sim.event_reasons().await;
    for reason in ["LeadershipTransferred", "MasterRemoved"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} in {reasons:?}"
        );
    }
    sim.stop().await;
}
