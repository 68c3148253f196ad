//! The operator in the simulation, shared by the tests that run a whole
//! cluster: the test API server, the operator's controllers in process, a
//! process kubelet of one node running the host's `alluxio` binary as the
//! image (each pod with its own 127.x address, names resolved through its
//! `/etc/hosts` as cluster DNS would), and the CLI against the master
//! pods. Needs root (mount namespaces).
#![allow(dead_code)] // each test file uses its own share of these

use alluxio_e2e::apiserver::TestApiServer;
use alluxio_e2e::kubelet::{KubeletConfig, Node, ProcessKubelet};
use alluxio_operator::controller::{run::controllers, Context};
use alluxio_operator::crd::{AlluxioCluster, AlluxioClusterStatus, Mount};
use alluxio_operator::metrics::Metrics;
use futures::FutureExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::CustomResourceExt;
use kube::ResourceExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

/// A cluster named `name` with `replicas` masters (properties for quick
/// elections; the journal on the StatefulSet's claims unless `journal`
/// says otherwise).
pub fn cluster_yaml(name: &str, replicas: i32, journal: &str) -> String {
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

pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    check: impl FnMut() -> F,
) -> T {
    alluxio_testkit::eventually(what, Duration::from_secs(180), check).await
}

/// The operator's controllers for namespace `default`, running in the
/// test's process.
pub struct RunningControllers {
    /// Set to true to stop them; `running` then ends.
    pub stop: tokio::sync::watch::Sender<bool>,
    pub running: tokio::task::JoinHandle<()>,
    /// Their metrics.
    pub registry: prometheus_client::registry::Registry,
}

/// Starts the operator's controllers calling the API server as `client`.
pub fn run_controllers(client: kube::Client) -> RunningControllers {
    let mut registry = prometheus_client::registry::Registry::default();
    let cx = Arc::new(Context::new(
        client,
        "alluxio-operator",
        Metrics::register(&mut registry),
    ));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = alluxio_common::server::wait_for_shutdown(stop_rx)
        .boxed()
        .shared();
    let (_store, running) = controllers(cx, Some("default"), shutdown);
    RunningControllers {
        stop,
        running: tokio::spawn(running),
        registry,
    }
}

/// The test API server, the operator's controllers and a process kubelet
/// of one node, with the cluster `name` created.
pub struct Simulation {
    pub name: String,
    /// Holds the kubelet's pods and the key file.
    _dir: tempfile::TempDir,
    pub client: kube::Client,
    pub clusters: Api<AlluxioCluster>,
    pub pods: Api<Pod>,
    pub kubelet: ProcessKubelet,
    pub alluxio: PathBuf,
    /// The cluster's key from its Secret, for the CLI.
    pub key_file: PathBuf,
    stop_tx: tokio::sync::watch::Sender<bool>,
    running: tokio::task::JoinHandle<()>,
    _server: TestApiServer,
}

impl Simulation {
    /// `None` (after saying why) when not root.
    pub async fn start(name: &str, replicas: i32, journal: &str) -> Option<Simulation> {
        Simulation::start_with(name, &cluster_yaml(name, replicas, journal), Vec::new()).await
    }

    /// The cluster of `yaml` (named `name`), after `secrets` are created.
    pub async fn start_with(name: &str, yaml: &str, secrets: Vec<Secret>) -> Option<Simulation> {
        if !alluxio_testkit::running_as_root() {
            return alluxio_testkit::missing_prerequisite(
                "root (the process kubelet uses mount namespaces)",
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let server = TestApiServer::start().await.unwrap();
        let client = server.client();
        register_crds(&client).await;
        let RunningControllers {
            stop: stop_tx,
            running,
            ..
        } = run_controllers(client.clone());
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
        let secrets_api = Api::<Secret>::namespaced(client.clone(), "default");
        for secret in &secrets {
            secrets_api
                .create(&PostParams::default(), secret)
                .await
                .unwrap();
        }
        let clusters: Api<AlluxioCluster> = Api::namespaced(client.clone(), "default");
        let cluster: AlluxioCluster = serde_yaml::from_str(yaml).unwrap();
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
        write_key_file(&key_file, &secret);
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

    /// A directory of the test's own (the kubelet's root is below it).
    pub fn scratch(&self) -> &Path {
        self._dir.path()
    }

    pub async fn stop(self) {
        self.stop_tx.send(true).unwrap();
        self.running.await.unwrap();
        self.kubelet.stop().await;
    }

    pub async fn status(&self) -> Option<AlluxioClusterStatus> {
        self.clusters.get(&self.name).await.ok()?.status
    }

    pub async fn scale(&self, replicas: i32) {
        let patch = serde_json::json!({ "spec": { "master": { "replicas": replicas } } });
        self.clusters
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    pub fn master_pod(&self, ordinal: usize) -> String {
        format!("{}-master-{ordinal}", self.name)
    }

    pub fn raft_address(&self, ordinal: usize) -> String {
        let name = &self.name;
        format!("{name}-master-{ordinal}.{name}-master-headless.default.svc.cluster.local:19200")
    }

    /// The logs of the first `count` master pods, for failure messages.
    pub fn master_logs(&self, count: usize) -> String {
        (0..count)
            .map(|i| self.kubelet.log("default", &self.master_pod(i), "master"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `ip:19998` of master pods `0..count`, once each has an address.
    pub async fn master_addresses(&self, count: usize) -> Option<String> {
        let mut addresses = Vec::new();
        for i in 0..count {
            let pod = self.pods.get(&self.master_pod(i)).await.ok()?;
            addresses.push(format!("{}:19998", pod.status?.pod_ip?));
        }
        Some(addresses.join(","))
    }

    /// The CLI against a list of masters, with the cluster's key as it
    /// was when the cluster was created.
    pub fn cli(&self, masters: &str, args: &[&str]) -> Output {
        self.cli_with_key(&self.key_file, masters, args)
    }

    /// The CLI with the key file `key_file`.
    pub fn cli_with_key(&self, key_file: &Path, masters: &str, args: &[&str]) -> Output {
        Command::new(&self.alluxio)
            .env("ALLUXIO_SECURITY_KEY_FILE", key_file)
            .args(["--master", masters])
            .args(args)
            .output()
            .unwrap()
    }

    /// The cluster's Secret as it is now, and its key in a file at `path`.
    pub async fn current_key(&self, path: &Path) -> Secret {
        let secret = Api::<Secret>::namespaced(self.client.clone(), "default")
            .get(&format!("{}-security", self.name))
            .await
            .unwrap();
        write_key_file(path, &secret);
        secret
    }

    /// Stdout of a CLI command that must succeed. A write whose answer
    /// was lost in a leadership change is retried by the client and may
    /// then find its own result (the client library documents this, as
    /// with any timeout): with `done_ok`, "already exists" is success.
    pub async fn ok(&self, masters: &str, args: &[&str], done_ok: bool) -> String {
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
    pub async fn elect(&self, masters: &str, ordinal: usize) {
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

    pub async fn mkdir(&self, masters: &str, path: &str) {
        self.ok(masters, &["fs", "mkdir", path], true).await;
    }

    /// The addresses of master pods `0..count` once a directory can be
    /// made through them (after pods have rolled to new addresses).
    pub async fn writable_masters(&self, count: usize, path: &str) -> String {
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
    pub async fn members(&self, count: usize) -> AlluxioClusterStatus {
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

    pub async fn event_reasons(&self) -> Vec<String> {
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
    pub async fn pods_gone(&self, ordinals: std::ops::Range<usize>) {
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

/// The key a cluster's Secret holds, in a private file for the CLI.
fn write_key_file(path: &Path, secret: &Secret) {
    use std::io::Write;
    let data = secret.data.as_ref().expect("the Secret has data");
    let mut f = alluxio_common::io::create_private(path).unwrap();
    f.write_all(&data["cluster.key"].0).unwrap();
}

/// The operator's CRDs, created in the test API server.
pub async fn register_crds(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        AlluxioCluster::crd(),
        Mount::crd(),
        alluxio_operator::crd::Load::crd(),
    ] {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
}
