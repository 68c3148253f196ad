//! The whole install in the simulation, as a user does it: `helm install`
//! of the packaged chart (CRDs, RBAC, the operator Deployment), then the
//! real kubectl applies the example AlluxioCluster. Every pod runs inside
//! the project's container image, built by `scripts/build-image.sh` under
//! the chart's and the operator's default image name: the operator (as
//! 65532, read-only root filesystem, in-cluster configuration over HTTPS
//! with its service-account token) reconciles it, and the process kubelet
//! runs the generated StatefulSet and DaemonSet on three simulated nodes
//! (two of them labelled for the cache), the master as the image's
//! non-root user. `kubectl wait` sees the cluster Ready, a Mount of an S3
//! bucket (a real S3 server, credentials in a Secret) becomes a real mount
//! that serves data, a Load of it warms every file on both workers,
//! deleting the cluster stops the processes, and the
//! chart's RBAC allowed every request of the operator's service account.
//! Needs root (mount namespaces), podman, helm and kubectl.

use alluxio_e2e::apiserver::TestApiServer;
use alluxio_e2e::kube_tools::{
    install_chart, package_chart, repo_dir, require_helm, require_kubectl, CHART_OPERATOR_USER,
};
use alluxio_e2e::kubelet::{KubeletConfig, Node, ProcessKubelet};
use alluxio_testkit::free_port;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, ListParams};
use kube::ResourceExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn alluxio_binary() -> PathBuf {
    alluxio_testkit::binaries::built_binary("alluxio")
}

async fn k(config: &Path, args: &[&str]) -> (bool, String) {
    alluxio_e2e::kube_tools::kubectl_async(config, args).await
}

/// `kubectl apply -f file`, which must succeed.
async fn apply(config: &Path, file: &Path) {
    let (ok, out) = k(
        config,
        &["apply", "--validate=false", "-f", file.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_brings_up_a_real_cluster_and_delete_stops_it() {
    if require_kubectl().is_none() || require_helm().is_none() {
        return;
    }
    if !alluxio_testkit::running_as_root() {
        alluxio_testkit::missing_prerequisite::<()>(
            "root (the process kubelet uses mount namespaces)",
        );
        return;
    }
    let Some(image) = alluxio_e2e::project_image::project_image() else {
        return;
    };
    let Some(s3) = alluxio_testkit::s3::S3Server::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = TestApiServer::start().await.unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, server.kubeconfig()).unwrap();
    let kubelet = ProcessKubelet::start(
        server.client(),
        KubeletConfig {
            nodes: vec![
                Node::new("node-0", &[("alluxio.rs/cache", "true")]),
                Node::new("node-1", &[("alluxio.rs/cache", "true")]),
                Node::new("node-2", &[]),
            ],
            images: vec![],
            local_images: vec![image],
            root: dir.path().join("kubelet"),
            csi: None,
            in_cluster: Some(server.in_cluster.clone()),
        },
    );

    // The chart, packaged and installed as a user installs a release: its
    // CRDs, RBAC and the operator Deployment, whose pod runs the image and
    // reaches the API server with its in-cluster configuration.
    let archive = package_chart(dir.path());
    let metrics_port = free_port().unwrap().to_string();
    install_chart(
        &archive,
        &config,
        &[&format!("metrics.port={metrics_port}")],
    );
    let (ok, out) = k(
        &config,
        &[
            "wait",
            "--for=condition=Established",
            "crd/alluxioclusters.alluxio.rs",
            "--timeout=30s",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let operator_log = || kubelet.logs_of("default", "test-alluxio-rs-", "operator");

    // The example as a user would apply it.
    let example = repo_dir().join("crds/examples/alluxiocluster.yaml");
    apply(&config, &example).await;
    // The operator's pod is deleted while it reconciles the new cluster;
    // the Deployment's next pod converges.
    let deadline = Instant::now() + Duration::from_secs(120);
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    while config_maps.get_opt("demo-config").await.unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the operator never started reconciling:\n{}",
            operator_log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let operator_pods = || async {
        let all = pods.list(&ListParams::default()).await.unwrap().items;
        let operator: Vec<Pod> = all
            .into_iter()
            .filter(|p| p.name_any().starts_with("test-alluxio-rs-"))
            .collect();
        operator
    };
    for p in operator_pods().await {
        pods.delete(&p.name_any(), &Default::default())
            .await
            .unwrap();
    }
    let (ok, out) = k(
        &config,
        &[
            "wait",
            "--for=condition=Ready",
            "alluxiocluster/demo",
            "--timeout=180s",
        ],
    )
    .await;
    if !ok {
        panic!(
            "{out}\noperator log:\n{}\nmaster log:\n{}\nworker log:\n{}",
            operator_log(),
            kubelet.log("default", "demo-master-0", "master"),
            kubelet.log("default", "demo-worker-node-0", "worker")
        );
    }
    // The master runs as the image's user: what it wrote in its journal
    // claim is 65532's (the claim is group 65532's through fsGroup).
    let claim = dir
        .path()
        .join("kubelet/claims/default/journal-demo-master-0");
    let owners: Vec<u32> = std::fs::read_dir(&claim)
        .unwrap()
        .flatten()
        .map(|e| std::os::unix::fs::MetadataExt::uid(&e.metadata().unwrap()))
        .collect();
    assert!(
        !owners.is_empty() && owners.iter().all(|&uid| uid == 65532),
        "{owners:?}"
    );
    let (_, table) = k(&config, &["get", "alluxioclusters"]).await;
    assert!(table.contains("Ready") && table.contains("2/2"), "{table}");
    // Nothing leaked or doubled by the restart.
    let (_, objects) = k(&config, &["get", "cm,svc,sts,ds", "-o", "name"]).await;
    let mut objects: Vec<&str> = objects.lines().filter(|o| o.contains("/demo-")).collect();
    objects.sort();
    assert_eq!(
        objects,
        [
            "configmap/demo-config",
            "daemonset.apps/demo-worker",
            "service/demo-master",
            "service/demo-master-headless",
            "statefulset.apps/demo-master"
        ]
    );

    // Real processes: the master pod's IP answers the alluxio CLI.
    let operator_pod = operator_pods()
        .await
        .into_iter()
        .find(|p| p.metadata.deletion_timestamp.is_none())
        .expect("the operator's pod");
    let operator_metrics = format!(
        "{}:{metrics_port}",
        operator_pod.status.unwrap().pod_ip.unwrap()
    );
    let master_pod = pods.get("demo-master-0").await.unwrap();
    let master_ip = master_pod.status.unwrap().pod_ip.unwrap();
    let master = format!("{master_ip}:19998");
    let workers = pods
        .list(&ListParams::default().labels("app.kubernetes.io/component=worker"))
        .await
        .unwrap();
    let mut worker_nodes: Vec<String> = workers
        .items
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    worker_nodes.sort();
    assert_eq!(
        worker_nodes,
        ["node-0", "node-1"],
        "the nodeSelector places the workers"
    );

    // A real Prometheus scrapes the operator, the master and the workers
    // at the ports the generated pods declare.
    let worker_targets: Vec<String> = workers
        .items
        .iter()
        .map(|p| {
            format!(
                "{}:30000",
                p.status.as_ref().unwrap().pod_ip.as_ref().unwrap()
            )
        })
        .collect();
    let prometheus = alluxio_testkit::prometheus::Prometheus::start(&[
        ("operator", vec![operator_metrics.clone()]),
        ("master", vec![format!("{master_ip}:19999")]),
        ("worker", worker_targets),
    ]);
    if let Some(prometheus) = &prometheus {
        prometheus.wait_for_series("up == 1", 4).await;
        prometheus
            .wait_for_series(r#"alluxio_operator_clusters{phase="Ready"}"#, 1)
            .await;
        prometheus.wait_for_series("alluxio_master_files", 1).await;
        let capacity = prometheus
            .wait_for_series("alluxio_worker_bytes_read_cache_total", 2)
            .await;
        assert_eq!(capacity.len(), 2, "{capacity:?}");
    }

    // A Mount of a bucket becomes a real mount that serves data through
    // the workers (the pods see the host's loopback, not its files).
    s3.create_bucket("data");
    s3.put_object("data", "hello.txt", b"hello from the under storage\n");
    // A dataset for the Load below.
    for i in 0..8 {
        s3.put_object("data", &format!("set/part-{i}"), &vec![i as u8; 300_000]);
    }
    let mount_yaml = dir.path().join("mount.yaml");
    std::fs::write(
        &mount_yaml,
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: data-s3\n  namespace: default\n\
             stringData:\n  access_key_id: {}\n  secret_access_key: {}\n---\n\
             apiVersion: alluxio.rs/v1alpha1\nkind: Mount\nmetadata:\n  name: local\n  namespace: default\n\
             spec:\n  cluster: demo\n  alluxioPath: /local\n  ufs: s3://data/\n\
             \x20 options:\n    endpoint: {}\n    region: {}\n  credentials:\n    name: data-s3\n",
            alluxio_testkit::s3::ACCESS_KEY,
            alluxio_testkit::s3::SECRET_KEY,
            s3.endpoint(),
            alluxio_testkit::s3::REGION,
        ),
    )
    .unwrap();
    apply(&config, &mount_yaml).await;
    let (ok, out) = k(
        &config,
        &[
            "wait",
            "--for=condition=Ready",
            "mount/local",
            "--timeout=60s",
        ],
    )
    .await;
    assert!(ok, "{out}");
    // A user with access to the cluster's Secret mints tokens from its key,
    // as the README says (`kubectl get secret demo-security ...`).
    let secret = Api::<Secret>::namespaced(server.client(), "default")
        .get("demo-security")
        .await
        .unwrap();
    let key_file = dir.path().join("cluster.key");
    {
        use std::io::Write;
        let mut f = alluxio_common::io::create_private(&key_file).unwrap();
        f.write_all(&secret.data.unwrap()["cluster.key"].0).unwrap();
    }
    let cli = |args: &[&str]| {
        let out = Command::new(alluxio_binary())
            .env("ALLUXIO_SECURITY_KEY_FILE", &key_file)
            .arg("--master")
            .arg(&master)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let table = cli(&["fs", "mount"]);
    assert!(
        table.contains("/local") && table.contains("s3://data"),
        "{table}"
    );
    // The example's journal is encrypted at rest: the mount's credentials,
    // which the journal holds, are in none of the claim's files, and every
    // journal file there is sealed (format version 2).
    let secret_key = alluxio_testkit::s3::SECRET_KEY.as_bytes();
    let mut journal_files = 0;
    for entry in std::fs::read_dir(&claim).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        assert!(
            !bytes.windows(secret_key.len()).any(|w| w == secret_key),
            "{name} holds the mount's secret key in the clear"
        );
        if name.starts_with("log-") && bytes.len() > 16 {
            assert_eq!((&bytes[..4], bytes[4]), (&b"ALXJ"[..], 2), "{name}");
            journal_files += 1;
        }
    }
    assert!(journal_files >= 1, "no journal segment with records");
    assert_eq!(
        cli(&["fs", "cat", "/local/hello.txt"]),
        "hello from the under storage\n"
    );

    // A Load of the Mount warms the bucket as a job of the master; the
    // operator follows it to Succeeded and `kubectl get ld` shows it.
    let load_yaml = dir.path().join("load.yaml");
    std::fs::write(
        &load_yaml,
        "apiVersion: alluxio.rs/v1alpha1\nkind: Load\nmetadata:\n  name: warm-local\n  namespace: default\n\
         spec:\n  cluster: demo\n  mount: local\n  replicas: 2\n",
    )
    .unwrap();
    // A user watching the Load as it runs.
    let mut watcher = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&config)
        .args(["get", "ld", "-w"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let watched = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let watch_reader = {
        use std::io::BufRead;
        let (watched, out) = (watched.clone(), watcher.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let mut w = watched.lock().unwrap();
                w.push_str(&line);
                w.push('\n');
            }
        })
    };
    apply(&config, &load_yaml).await;
    let (ok, out) = k(
        &config,
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Succeeded",
            "load/warm-local",
            "--timeout=120s",
        ],
    )
    .await;
    assert!(ok, "{out}\n{}", operator_log());
    // The watch printed the Load as it changed, ending with its success.
    let deadline = Instant::now() + Duration::from_secs(30);
    let succeeded = |w: &str| {
        w.lines()
            .any(|l| l.contains("warm-local") && l.contains("Succeeded"))
    };
    while !succeeded(&watched.lock().unwrap()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    watch_reader.join().unwrap();
    let watched = watched.lock().unwrap().clone();
    let rows = watched.lines().filter(|l| l.contains("warm-local")).count();
    assert!(
        rows >= 2 && succeeded(&watched),
        "kubectl get ld -w showed:\n{watched}"
    );
    let (ok, table) = k(&config, &["get", "ld"]).await;
    assert!(ok, "{table}");
    assert!(
        table.contains("PROGRESS") && table.contains("warm-local") && table.contains("100%"),
        "{table}"
    );
    let (ok, files) = k(
        &config,
        &[
            "get",
            "ld",
            "warm-local",
            "-o",
            "jsonpath={.status.filesDone}",
        ],
    )
    .await;
    assert!(ok && files == "9", "9 files loaded, got {files:?}");
    let listing = cli(&["fs", "ls", "/local/set"]);
    assert_eq!(listing.matches("100%").count(), 8, "{listing}");
    // The Mount's cached percentage follows the load.
    let (ok, out) = k(
        &config,
        &[
            "wait",
            "--for=jsonpath={.status.cachedPercentage}=100",
            "mount/local",
            "--timeout=60s",
        ],
    )
    .await;
    assert!(ok, "{out}");

    // Deleting the cluster stops its processes.
    let (ok, out) = k(&config, &["delete", "alluxiocluster", "demo"]).await;
    assert!(ok, "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(&master).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the master still answers after the cluster was deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The Mount and the Load go after it, their finalizers satisfied.
    for kind in ["mount/local", "load/warm-local"] {
        let (ok, out) = k(&config, &["delete", kind, "--timeout=60s"]).await;
        assert!(ok, "{out}");
    }
    let (_, left) = k(&config, &["get", "pods,mounts,loads", "-A"]).await;
    assert!(!left.contains("demo-") && !left.contains("local"), "{left}");

    // Everything the operator did from its pod, as the chart's service
    // account, the chart's RBAC allows.
    alluxio_e2e::kube_tools::assert_chart_allows(&server.requests_of(CHART_OPERATOR_USER));
    kubelet.stop().await;
}
