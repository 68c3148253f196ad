//! `spec.master.replicas: 3` in the simulation: the operator's controllers
//! (in process) build a Raft group of three master pods that the process
//! kubelet runs (the host's `alluxio` binary standing in for the image;
//! each pod with its own 127.x address, names resolved through its
//! `/etc/hosts` as cluster DNS would). The cluster becomes Ready with one
//! leader in its status; deleting the leader's pod keeps the cluster
//! writable, a new leader shows in the status, and the StatefulSet's new
//! pod rejoins. Then `replicas: 5` (two masters join by themselves) and
//! back to 3 with the leader among the leaving two: the operator hands the
//! leadership over and removes both from the group before their pods go,
//! and the three that stay keep everything. Needs root (mount namespaces).

use alluxio_e2e::apiserver::TestApiServer;
use alluxio_e2e::kubelet::{KubeletConfig, Node, ProcessKubelet};
use alluxio_operator::controller::{run::controllers, Context};
use alluxio_operator::crd::{AlluxioCluster, ClusterPhase, Mount};
use alluxio_operator::metrics::Metrics;
use futures::FutureExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::CustomResourceExt;
use kube::ResourceExt;
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
    // The CLI against a list of masters.
    let cli_at = |masters: &str, args: &[&str]| {
        Command::new(&alluxio)
            .env("ALLUXIO_SECURITY_KEY_FILE", &key_file)
            .args(["--master", masters])
            .args(args)
            .output()
            .unwrap()
    };
    let cli = |args: &[&str]| cli_at(&masters, args);
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

    // Five masters: the two new pods join the group by themselves.
    let scale = |replicas: i32| {
        let clusters = clusters.clone();
        async move {
            let patch = serde_json::json!({ "spec": { "master": { "replicas": replicas } } });
            clusters
                .patch("ha", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    };
    scale(5).await;
    eventually("five members, one leader", || async {
        let s = clusters.get("ha").await.ok()?.status?;
        let leaders = s.masters.iter().filter(|m| m.role == "LEADER").count();
        let followers = s.masters.iter().filter(|m| m.role == "FOLLOWER").count();
        (s.masters.len() == 5 && leaders == 1 && followers == 4).then_some(())
    })
    .await;
    let mut addresses = Vec::new();
    for i in 0..5 {
        let pod = pods.get(&format!("ha-master-{i}")).await.unwrap();
        addresses.push(format!("{}:19998", pod.status.unwrap().pod_ip.unwrap()));
    }
    let five = addresses.join(",");
    // As `mkdir` above: AlreadyExists is a retried write that had been done.
    let cli5 = |args: &[&str]| {
        let out = cli_at(&five, args);
        assert!(
            out.status.success() || String::from_utf8_lossy(&out.stderr).contains("already exists"),
            "{args:?}: {}\nmaster logs:\n{}",
            String::from_utf8_lossy(&out.stderr),
            (0..5).map(master_log).collect::<Vec<_>>().join("\n")
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    cli5(&["fs", "mkdir", "/with-five"]);
    // The leader is one of the masters that will go: the operator must
    // hand the leadership over before removing it.
    let raft_of =
        |i: usize| format!("ha-master-{i}.ha-master-headless.default.svc.cluster.local:19200");
    cli5(&[
        "fsadmin",
        "journal",
        "quorum",
        "elect",
        "--address",
        &raft_of(4),
    ]);

    // Back to three: masters 3 and 4 leave the group before their pods go.
    scale(3).await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let status = eventually("three members and a StatefulSet of three", || async {
        let s = clusters.get("ha").await.ok()?.status?;
        let sts = statefulsets.get("ha-master").await.ok()?;
        let leaders = s.masters.iter().filter(|m| m.role == "LEADER").count();
        (s.masters.len() == 3 && leaders == 1 && sts.spec?.replicas == Some(3)).then_some(s)
    })
    .await;
    for m in &status.masters {
        assert!(
            !m.address.starts_with("ha-master-3.") && !m.address.starts_with("ha-master-4."),
            "{status:?}"
        );
    }
    eventually("the pods of masters 3 and 4 gone", || async {
        let names: Vec<String> = pods
            .list(&Default::default())
            .await
            .ok()?
            .items
            .iter()
            .map(|p| p.name_any())
            .collect();
        (!names
            .iter()
            .any(|n| n == "ha-master-3" || n == "ha-master-4"))
        .then_some(())
    })
    .await;
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), "default");
    let reasons: Vec<String> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    for reason in ["LeadershipTransferred", "MasterRemoved"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} in {reasons:?}"
        );
    }
    // Still writable, nothing lost, with the three that stay (once their
    // pods have rolled to the shorter address lists, at new addresses).
    let three = eventually("the three masters writable again", || async {
        let mut addresses = Vec::new();
        for i in 0..3 {
            let pod = pods.get(&format!("ha-master-{i}")).await.ok()?;
            addresses.push(format!("{}:19998", pod.status?.pod_ip?));
        }
        let masters = addresses.join(",");
        let out = cli_at(&masters, &["fs", "mkdir", "/with-three"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        (out.status.success() || stderr.contains("already exists")).then_some(masters)
    })
    .await;
    let ok3 = |args: &[&str]| {
        let out = cli_at(&three, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let listing = ok3(&["fs", "ls", "/"]);
    for dir in ["/before", "/after", "/with-five", "/with-three"] {
        assert!(listing.contains(dir), "{dir} missing: {listing}");
    }
    let quorum = ok3(&["fsadmin", "journal", "quorum", "info"]);
    assert_eq!(quorum.matches("LEADER").count(), 1, "{quorum}");
    assert!(
        !quorum.contains("ha-master-3") && !quorum.contains("ha-master-4"),
        "{quorum}"
    );

    stop_tx.send(true).unwrap();
    running.await.unwrap();
    kubelet.stop().await;
}
