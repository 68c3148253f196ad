//! A key rotation driven by the operator in the simulation (see
//! `common/mod.rs`): the cluster's `alluxio.rs/rotate-key` annotation
//! set, the operator applies the three steps to the cluster's Secret one
//! interval apart, the process kubelet updates the Secret's files in the
//! running pods as the kubelet does, and the master and worker take the
//! new keys without a restart: afterwards the old key is refused, the new
//! one works for metadata and for data through the worker, and the
//! operator still reaches the master. Needs root (mount namespaces).

mod common;

use alluxio_operator::build::key_rotation::{ROTATE_KEY, ROTATION_INTERVAL, ROTATION_STEP};
use alluxio_operator::crd::ClusterPhase;
use common::{eventually, Simulation};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_rotates_the_key_of_a_running_cluster() {
    let Some(sim) = Simulation::start("keys", 1, "EmptyDir").await else {
        return;
    };
    eventually("the cluster Ready", || async {
        (sim.status().await?.phase == Some(ClusterPhase::Ready)).then_some(())
    })
    .await;
    // The pods' root UFS is the host's /tmp/alluxio-underfs, which other
    // runs share: names of this run's own.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let run = format!("/rotation-{}-{nanos}", std::process::id());
    let (before, after) = (format!("{run}-before"), format!("{run}-after"));
    let master = sim.writable_masters(1, &before).await;
    let pod_uids = |pods: Vec<k8s_openapi::api::core::v1::Pod>| -> Vec<String> {
        let mut uids: Vec<String> = pods.iter().filter_map(|p| p.uid()).collect();
        uids.sort();
        uids
    };
    let uids_before = pod_uids(sim.pods.list(&Default::default()).await.unwrap().items);

    // Ask for a rotation, steps 12 s apart (the processes read their key
    // file every 10 s; the simulated kubelet updates it within a second).
    let patch = serde_json::json!({ "metadata": { "annotations": {
        ROTATE_KEY: "first", ROTATION_INTERVAL: "12s" } } });
    sim.clusters
        .patch("keys", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let secrets = Api::<Secret>::namespaced(sim.client.clone(), "default");
    eventually("the rotation done", || async {
        let secret = secrets.get("keys-security").await.ok()?;
        (secret.annotations().get(ROTATION_STEP)? == "done").then_some(())
    })
    .await;
    assert!(sim.event_reasons().await.iter().any(|r| r == "KeyRotated"));

    // The old key is refused (once the master has read the last step).
    let refused = alluxio_testkit::eventually(
        "the old key refused",
        std::time::Duration::from_secs(3600),
        || async {
            let out = sim.cli(&master, &["fs", "ls", "/"]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            (!out.status.success() && stderr.contains("does not match this cluster's key"))
                .then_some(())
        },
    );
    if tokio::time::timeout(std::time::Duration::from_secs(60), refused)
        .await
        .is_err()
    {
        let out = sim.cli(&master, &["fs", "ls", "/"]);
        panic!(
            "the old key still works: {}{}\nmaster log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            sim.master_logs(1)
        );
    }
    // The new key works, for metadata and for data through the worker.
    let new_key = sim.scratch().join("new.key");
    let secret = sim.current_key(&new_key).await;
    let text = String::from_utf8(secret.data.unwrap()["cluster.key"].0.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "one key left");
    let ok = |args: &[&str]| {
        let out = sim.cli_with_key(&new_key, &master, args);
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            sim.master_logs(1)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    ok(&["fs", "mkdir", &after]);
    let local = sim.scratch().join("hello.txt");
    std::fs::write(&local, "rotated").unwrap();
    let hello = format!("{after}/hello.txt");
    ok(&["fs", "copyFromLocal", local.to_str().unwrap(), &hello]);
    assert_eq!(ok(&["fs", "cat", &hello]), "rotated");
    let listing = ok(&["fs", "ls", "/"]);
    assert!(
        listing.contains(&before) && listing.contains(&after),
        "{listing}"
    );
    // Nothing restarted, and the operator still reaches the master (the
    // workers it reports come from the master).
    let uids_after = pod_uids(sim.pods.list(&Default::default()).await.unwrap().items);
    assert_eq!(uids_before, uids_after, "pods were replaced");
    eventually("the status from the master with the new key", || async {
        let s = sim.status().await?;
        (s.phase == Some(ClusterPhase::Ready) && s.workers.as_deref() == Some("1/1")).then_some(())
    })
    .await;
    sim.stop().await;
}
