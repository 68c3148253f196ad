//! `spec.master.replicas: 3` in the simulation: the operator's controllers
//! (in process) build a Raft group of three master pods that the process
//! kubelet runs (the host's `alluxio` binary standing in for the image;
//! each pod with its own 127.x address, names resolved through its
//! `/etc/hosts` as cluster DNS would). The cluster becomes Ready with one
//! leader in its status; deleting the leader's pod keeps the cluster
//! writable, a new leader shows in the status, and the StatefulSet's new
//! pod rejoins. Needs root (mount namespaces).

use alluxio_e2e::apiserver::TestApiServer;
use alluxio_e2e::kubelet::{KubeletConfig, Node, ProcessKubelet};
use alluxio_operator::controller::{run::controllers, Context};
use alluxio_operator::crd::{AlluxioCluster, ClusterPhase, Mount};
use alluxio_operator::metrics::Metrics;
use futures::FutureExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::CustomResourceExt;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const CLUSTER: &str = r#"
apiVersion: alluxio.rs/v1alpha1
kind: AlluxioCluster
metadata:
  name: ha
  namespace: default
spec:
  master:
    replicas: 3
    journal:
      medium: EmptyDir
  worker:
    tiers:
      - alias: MEM
        medium: Memory
        quota: 64Mi
  properties:
    master.embedded_journal.election_timeout: 500ms
    master.embedded_journal.heartbeat_interval: 100ms
"#;

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    check: impl FnMut() -> F,
) -> T {
    alluxio_testkit::eventually(what, Duration::from_secs(120), check).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_master_pods_survive_the_deletion_of_the_leaders_pod() {
    if !alluxio_testkit::running_as_root() {
        alluxio_testkit::missing_prerequisite::<()>(
            "root (the process kubelet uses mount namespaces)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = TestApiServer::start().await.unwrap();
    let client = server.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        AlluxioCluster::crd(),
        Mount::crd(),
        alluxio_operator::crd::Load::crd(),
    ] {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let mut registry = prometheus_client::registry::Registry::default();
    let cx = Arc::new(Context::new(
        client.clone(),
        "alluxio-operator",
        Metrics::register(&mut registry),
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = alluxio_common::server::wait_for_shutdown(stop_rx)
        .boxed()
        .shared();
    let (_store, running) = controllers(cx, Some("default"), shutdown);
    let running = tokio::spawn(running);
    let alluxio = alluxio_testkit::binaries::built_binary("alluxio");
    let kubelet = ProcessKubelet::start(
        client.clone(),
        KubeletConfig {
            nodes: vec![Node::new("node-0", &[])],
            images: vec![("ghcr.io/alluxio-rs/alluxio".into(), alluxio.clone())],
            local_images: vec![],
            root: dir.path().join("kubelet"),
            csi: None,
            in_cluster: None,
        },
    );

    let clusters: Api<AlluxioCluster> = Api::namespaced(client.clone(), "default");
    let cluster: AlluxioCluster = serde_yaml::from_str(CLUSTER).unwrap();
    clusters
        .create(&PostParams::default(), &cluster)
        .await
        .unwrap();
    let master_log = |i: usize| kubelet.log("default", &format!("ha-master-{i}"), "master");
    let status = alluxio_testkit::eventually(
        "the cluster Ready with a leader",
        Duration::from_secs(180),
        || async {
            let s = clusters.get("ha").await.ok()?.status?;
            (s.phase == Some(ClusterPhase::Ready)
                && s.leader.is_some()
                && s.masters.iter().filter(|m| m.role == "FOLLOWER").count() == 2)
                .then_some(s)
        },
    )
    .await;
    let leader = status.leader.clone().unwrap();
    assert_eq!(
        status.masters.iter().filter(|m| m.role == "LEADER").count(),
        1,
        "{status:?}"
    );
    let leader_pod = (0..3)
        .map(|i| format!("ha-master-{i}"))
        .find(|pod| leader.starts_with(&format!("{pod}.")))
        .unwrap_or_else(|| panic!("leader {leader} is not a master pod"));

    // The CLI, with the cluster's key and every master pod's address.
    let secret = Api::<Secret>::namespaced(client.clone(), "default")
        .get("ha-security")
        .await
        .unwrap();
    let key_file = dir.path().join("cluster.key");
    {
        use std::io::Write;
        let mut f = alluxio_common::io::create_private(&key_file).unwrap();
        f.write_all(&secret.data.unwrap()["cluster.key"].0).unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut addresses = Vec::new();
    for i in 0..3 {
        let pod = pods.get(&format!("ha-master-{i}")).await.unwrap();
        addresses.push(format!("{}:19998", pod.status.unwrap().pod_ip.unwrap()));
    }
    let masters = addresses.join(",");
    let cli = |args: &[&str]| {
        Command::new(&alluxio)
            .env("ALLUXIO_SECURITY_KEY_FILE", &key_file)
            .args(["--master", &masters])
            .args(args)
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let out = cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}\nmaster logs:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            master_log(0),
            master_log(1),
            master_log(2)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // A write whose answer was lost in a leadership change is retried by
    // the client and may then find its own result (the client library
    // documents this, as with any timeout): AlreadyExists is success here.
    let mkdir = |path: &str| {
        let out = cli(&["fs", "mkdir", path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("already exists"),
            "mkdir {path}: {stderr}\nmaster logs:\n{}\n{}\n{}",
            master_log(0),
            master_log(1),
            master_log(2)
        );
    };
    mkdir("/before");

    // The leader's pod goes; the cluster stays writable.
    pods.delete(&leader_pod, &Default::default()).await.unwrap();
    mkdir("/after");
    let listing = ok(&["fs", "ls", "/"]);
    assert!(
        listing.contains("/before") && listing.contains("/after"),
        "{listing}"
    );
    let status = eventually("a new leader and three members", || async {
        let s = clusters.get("ha").await.ok()?.status?;
        let new_leader = s.leader.clone()?;
        let followers = s.masters.iter().filter(|m| m.role == "FOLLOWER").count();
        (new_leader != leader && followers == 2).then_some(s)
    })
    .await;
    assert_eq!(status.masters.len(), 3, "{status:?}");
    let quorum = ok(&["fsadmin", "journal", "quorum", "info"]);
    assert_eq!(quorum.matches("LEADER").count(), 1, "{quorum}");

    stop_tx.send(true).unwrap();
    running.await.unwrap();
    kubelet.stop().await;
}
