//! Fault-tolerant masters in the simulation: the operator's controllers
//! (in process) build the masters' StatefulSet that the process kubelet
//! runs (the host's `alluxio` binary standing in for the image; each pod
//! with its own 127.x address, names resolved through its `/etc/hosts` as
//! cluster DNS would), and the CLI talks to the master pods.
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

use alluxio_e2e::apiserver::TestApiServer;
use alluxio_e2e::kubelet::{KubeletConfig, Node, ProcessKubelet};
use alluxio_operator::controller::{run::controllers, Context};
use alluxio_operator::crd::{AlluxioCluster, AlluxioClusterStatus, ClusterPhase, Mount};
use alluxio_operator::metrics::Metrics;
use futures::FutureExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::CustomResourceExt;
use kube::ResourceExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

/// A cluster named `name` with `replicas` masters (properties for quick
/// elections; the journal on the StatefulSet's claims unless `journal`
/// says otherwise).
fn cluster_yaml(name: &str, replicas: i32, journal: &str) -> String {
    format!(
        r#"
apiVersion: alluxio.rs/v1alpha1
kind: AlluxioCluster
metadata:
  name: {name}
  namespace: default
spec:
  master:
    replicas: {replicas}
    journal:
      medium: {journal}
  worker:
    tiers:
      - alias: MEM
        medium: Memory
        quota: 64Mi
  properties:
    master.embedded_journal.election_timeout: 500ms
    master.embedded_journal.heartbeat_interval: 100ms
"#
    )
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    check: impl FnMut() -> F,
) -> T {
    alluxio_testkit::eventually(what, Duration::from_secs(180), check).await
}

/// The test API server, the operator's controllers and a process kubelet
/// of one node, with the cluster `name` created.
struct Simulation {
    name: String,
    /// Holds the kubelet's pods and the key file.
    _dir: tempfile::TempDir,
    client: kube::Client,
    clusters: Api<AlluxioCluster>,
    pods: Api<Pod>,
    kubelet: ProcessKubelet,
    alluxio: PathBuf,
    /// The cluster's key from its Secret, for the CLI.
    key_file: PathBuf,
    stop_tx: tokio::sync::watch::Sender<bool>,
    running: tokio::task::JoinHandle<()>,
    _server: TestApiServer,
}

impl Simulation {
    /// `None` (after saying why) when not root.
    async fn start(name: &str, replicas: i32, journal: &str) -> Option<Simulation> {
        if !alluxio_testkit::running_as_root() {
            return alluxio_testkit::missing_prerequisite(
                "root (the process kubelet uses mount namespaces)",
            );
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
        let cluster: AlluxioCluster =
            serde_yaml::from_str(&cluster_yaml(name, replicas, journal)).unwrap();
        clusters
            .create(&PostParams::default(), &cluster)
            .await
            .unwrap();
        let secrets = Api::<Secret>::namespaced(client.clone(), "default");
        let secret = eventually("the cluster's Secret", || async {
            secrets.get_opt(&format!("{name}-security")).await.ok()?
        })
        .await;
        let key_file = dir.path().join("cluster.key");
        {
            use std::io::Write;
            let mut f = alluxio_common::io::create_private(&key_file).unwrap();
            f.write_all(&secret.data.unwrap()["cluster.key"].0).unwrap();
        }
        Some(Simulation {
            name: name.to_string(),
            pods: Api::namespaced(client.clone(), "default"),
            _dir: dir,
            client,
            clusters,
            kubelet,
            alluxio,
            key_file,
            stop_tx,
            running,
            _server: server,
        })
    }

    async fn stop(self) {
        self.stop_tx.send(true).unwrap();
        self.running.await.unwrap();
        self.kubelet.stop().await;
    }

    async fn status(&self) -> Option<AlluxioClusterStatus> {
        self.clusters.get(&self.name).await.ok()?.status
    }

    async fn scale(&self, replicas: i32) {
        let patch = serde_json::json!({ "spec": { "master": { "replicas": replicas } } });
        self.clusters
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    fn master_pod(&self, ordinal: usize) -> String {
        format!("{}-master-{ordinal}", self.name)
    }

    fn raft_address(&self, ordinal: usize) -> String {
        let name = &self.name;
        format!("{name}-master-{ordinal}.{name}-master-headless.default.svc.cluster.local:19200")
    }

    /// The logs of the first `count` master pods, for failure messages.
    fn master_logs(&self, count: usize) -> String {
        (0..count)
            .map(|i| self.kubelet.log("default", &self.master_pod(i), "master"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `ip:19998` of master pods `0..count`, once each has an address.
    async fn master_addresses(&self, count: usize) -> Option<String> {
        let mut addresses = Vec::new();
        for i in 0..count {
            let pod = self.pods.get(&self.master_pod(i)).await.ok()?;
            addresses.push(format!("{}:19998", pod.status?.pod_ip?));
        }
        Some(addresses.join(","))
    }

    /// The CLI against a list of masters.
    fn cli(&self, masters: &str, args: &[&str]) -> Output {
        Command::new(&self.alluxio)
            .env("ALLUXIO_SECURITY_KEY_FILE", &self.key_file)
            .args(["--master", masters])
            .args(args)
            .output()
            .unwrap()
    }

    /// Stdout of a CLI command that must succeed. A write whose answer
    /// was lost in a leadership change is retried by the client and may
    /// then find its own result (the client library documents this, as
    /// with any timeout): with `done_ok`, "already exists" is success.
    async fn ok(&self, masters: &str, args: &[&str], done_ok: bool) -> String {
        let out = self.cli(masters, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || (done_ok && stderr.contains("already exists")),
            "{args:?}: {stderr}\nmaster logs:\n{}",
            self.master_logs(5)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// `quorum elect` of master `ordinal`.
    async fn elect(&self, masters: &str, ordinal: usize) {
        let address = self.raft_address(ordinal);
        let args = [
            "fsadmin",
            "journal",
            "quorum",
            "elect",
            "--address",
            &address,
        ];
        self.ok(masters, &args, false).await;
    }

    async fn mkdir(&self, masters: &str, path: &str) {
        self.ok(masters, &["fs", "mkdir", path], true).await;
    }

    /// The addresses of master pods `0..count` once a directory can be
    /// made through them (after pods have rolled to new addresses).
    async fn writable_masters(&self, count: usize, path: &str) -> String {
        eventually(&format!("{count} master(s) writable"), || async {
            let masters = self.master_addresses(count).await?;
            let out = self.cli(&masters, &["fs", "mkdir", path]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            (out.status.success() || stderr.contains("already exists")).then_some(masters)
        })
        .await
    }

    /// Waits until the status shows `count` members, one of them leading,
    /// and the StatefulSet has `count` replicas.
    async fn members(&self, count: usize) -> AlluxioClusterStatus {
        let statefulsets: Api<StatefulSet> = Api::namespaced(self.client.clone(), "default");
        let sts_name = format!("{}-master", self.name);
        let what = format!("{count} members, one leader");
        let wait = alluxio_testkit::eventually(
            &what,
            Duration::from_secs(3600), // the timeout below says more
            || async {
                let s = self.status().await?;
                let sts = statefulsets.get(&sts_name).await.ok()?;
                let leaders = s.masters.iter().filter(|m| m.role == "LEADER").count();
                let followers = s.masters.iter().filter(|m| m.role == "FOLLOWER").count();
                (s.masters.len() == count
                    && leaders == 1
                    && followers == count - 1
                    && sts.spec?.replicas == Some(count as i32))
                .then_some(s)
            },
        );
        match tokio::time::timeout(Duration::from_secs(180), wait).await {
            Ok(status) => status,
            Err(_) => panic!(
                "no {count} members: {:?}\nevents: {:?}\nmaster logs:\n{}",
                self.status().await,
                self.event_reasons().await,
                self.master_logs(count)
            ),
        }
    }

    async fn event_reasons(&self) -> Vec<String> {
        Api::<k8s_openapi::api::events::v1::Event>::namespaced(self.client.clone(), "default")
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|e| e.reason)
            .collect()
    }

    /// Waits until no pod of the masters `ordinals` is left.
    async fn pods_gone(&self, ordinals: std::ops::Range<usize>) {
        eventually("the pods of the removed masters gone", || async {
            let names: Vec<String> = (self.pods.list(&Default::default()).await.ok()?.items)
                .iter()
                .map(|p| p.name_any())
                .collect();
            (!ordinals
                .clone()
                .any(|i| names.contains(&self.master_pod(i))))
            .then_some(())
        })
        .await
    }
}

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
    let five = sim.master_addresses(5).await.unwrap();
    sim.mkdir(&five, "/with-five").await;
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
    let quorum = sim
        .ok(&three, &["fsadmin", "journal", "quorum", "info"], false)
        .await;
    assert_eq!(quorum.matches("LEADER").count(), 1, "{quorum}");
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
