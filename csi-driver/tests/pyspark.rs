//! End to end in the simulation, as a Spark-on-Kubernetes executor would
//! use a volume: a claim of the alluxio StorageClass is provisioned by the
//! CSI controller (through the provisioner loop playing
//! external-provisioner) of the chart's CSI controller, the process kubelet
//! stages and publishes it for a pod through the chart's CSI node plugin,
//! both running as pods of the project's image (the node plugin's FUSE
//! mounts reach the host through the Bidirectional kubelet volume), and the pod — real `pyspark` (PyPI) on a
//! Java runtime — reads a Parquet dataset from the volume and gets the
//! same rows as reading the dataset directly. Deleting the pod unpublishes
//! and unstages, deleting the claim deletes the volume. Needs root,
//! pyspark, java, helm and podman.

mod common;

use alluxio_e2e::apiserver::TestApiServer;
use alluxio_e2e::kubelet::csi::CsiPlugin;
use alluxio_e2e::kubelet::{KubeletConfig, Node, ProcessKubelet};
use alluxio_e2e::provisioner::Provisioner;
use alluxio_proto::grpc::WriteType;
use alluxio_testkit::eventually;
use bytes::Bytes;
use common::*;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const READER: &str = r#"
import sys
from pyspark.sql import SparkSession, functions as F
spark = (SparkSession.builder.master("local[1]").appName("alluxio-rs-reader")
         .config("spark.ui.enabled", "false").getOrCreate())
df = spark.read.parquet(sys.argv[1])
row = df.agg(F.count("*").alias("n"), F.sum("value").alias("s"),
             F.countDistinct("name").alias("d")).collect()[0]
print(f"ROWS={row.n} SUM={row.s:.6f} NAMES={row.d}", flush=True)
spark.stop()
"#;

const WRITER: &str = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
for part in range(3):
    ids = list(range(part * 20000, (part + 1) * 20000))
    table = pa.table({"id": ids, "value": [i * 0.5 for i in ids],
                      "name": [f"n{i % 97}" for i in ids]})
    pq.write_table(table, f"{sys.argv[1]}/part-{part}.parquet")
"#;

/// The python3 with pyspark, or `None` (skip; a failure under CI).
fn python_with_pyspark() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import pyspark, pyarrow, sys; print(sys.executable)"])
        .output()
        .ok()?;
    let java = Command::new("java")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !out.status.success() || !java {
        return alluxio_testkit::missing_prerequisite(
            "pyspark and pyarrow (PyPI) with a Java runtime",
        );
    }
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The chart's node plugin DaemonSet for a kubelet whose directory is
/// `kubelet_root` and its controller Deployment, without their sidecars:
/// the node-driver-registrar (the process kubelet is told the plugin's
/// socket instead of registering it) and the external-provisioner (the
/// test's provisioner loop plays it). The controller's default master is
/// the test cluster's (`csi.defaultMaster`), for calls that name none.
fn chart_csi(kubelet_root: &Path, default_master: &str) -> (DaemonSet, Deployment) {
    let objects = alluxio_e2e::kube_tools::helm_template(
        &alluxio_e2e::kube_tools::chart_dir(),
        &[
            "--namespace",
            "default",
            "--set",
            "csi.enabled=true",
            "--set",
            &format!("csi.kubeletDir={}", kubelet_root.display()),
            "--set",
            &format!("csi.defaultMaster={default_master}"),
        ],
    );
    let without_sidecar = |kind: &str, name: &str, sidecar: &str| {
        let mut o = objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("the chart's {kind} {name}"))
            .clone();
        o["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .retain(|c| c["name"] != sidecar);
        o
    };
    let node = without_sidecar(
        "DaemonSet",
        "test-alluxio-rs-csi-node",
        "node-driver-registrar",
    );
    let controller = without_sidecar(
        "Deployment",
        "test-alluxio-rs-csi-controller",
        "csi-provisioner",
    );
    (
        serde_json::from_value(node).unwrap(),
        serde_json::from_value(controller).unwrap(),
    )
}

/// Mounts the CSI plugin made: staging under `plugins/`, publishing under
/// `pods/` (not the kubelet's own shared bind mounts of those directories).
fn csi_mounts(kubelet_root: &Path) -> Vec<String> {
    let below = [kubelet_root.join("plugins"), kubelet_root.join("pods")];
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .filter(|l| {
            let point = Path::new(l.split(' ').nth(4).unwrap_or_default());
            below.iter().any(|b| point.starts_with(b) && point != b)
        })
        .map(str::to_string)
        .collect()
}

fn read_directly(python: &Path, dataset: &Path) -> String {
    let out = Command::new(python)
        .args(["-c", READER])
        .arg(dataset)
        .env("PYSPARK_PYTHON", python)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    result_line(&String::from_utf8_lossy(&out.stdout))
}

/// The reader's result (Spark's progress bar may precede it on its line).
fn result_line(output: &str) -> String {
    output
        .find("ROWS=")
        .and_then(|i| output[i..].lines().next())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyspark_reads_a_parquet_dataset_through_a_provisioned_volume() {
    if require_root().is_none() {
        return;
    }
    let Some(python) = python_with_pyspark() else {
        return;
    };
    if alluxio_e2e::kube_tools::require_helm().is_none() {
        return;
    }
    let Some(image) = alluxio_e2e::project_image::project_image() else {
        return;
    };
    let cluster = cluster().await;
    let master = master_address(&cluster);
    let dir = tempfile::tempdir().unwrap();
    // The plugins have no credentials of their own: they reach the master
    // only with the cluster's Secret, which the provisioner hands
    // CreateVolume and the kubelet NodeStageVolume, as the StorageClass
    // the operator writes says.
    let server = TestApiServer::start().await.unwrap();
    let client = server.client();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "demo-security", "namespace": "default"},
        "stringData": {"cluster.key": cluster.key().to_hex()},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": "alluxio"},
        "provisioner": "csi.alluxio.rs",
        "reclaimPolicy": "Delete",
        "parameters": {
            "masterAddress": master,
            "csi.storage.k8s.io/provisioner-secret-name": "demo-security",
            "csi.storage.k8s.io/provisioner-secret-namespace": "default",
            "csi.storage.k8s.io/node-stage-secret-name": "demo-security",
            "csi.storage.k8s.io/node-stage-secret-namespace": "default",
        },
    }))
    .unwrap();
    Api::<StorageClass>::all(client.clone())
        .create(&PostParams::default(), &class)
        .await
        .unwrap();
    let kubelet_root = dir.path().join("kubelet");
    let node_socket = kubelet_root.join("plugins/csi.alluxio.rs/csi.sock");
    let kubelet = ProcessKubelet::start(
        client.clone(),
        KubeletConfig {
            nodes: vec![Node::new("node-0", &[])],
            images: vec![("python".into(), python.clone())],
            local_images: vec![image],
            root: kubelet_root.clone(),
            csi: Some(CsiPlugin {
                driver: "csi.alluxio.rs".into(),
                socket: node_socket.clone(),
            }),
            in_cluster: Some(server.in_cluster.clone()),
        },
    );
    // The node plugin and the controller as the chart deploys them, the
    // node plugin's kubelet directory the process kubelet's.
    let (node_plugin, controller) = chart_csi(&kubelet_root, &master);
    Api::<DaemonSet>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &node_plugin)
        .await
        .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &controller)
        .await
        .unwrap();
    let listens = |socket: &Path| std::os::unix::net::UnixStream::connect(socket).is_ok();
    eventually(
        "the node plugin listens",
        Duration::from_secs(120),
        || async { listens(&node_socket).then_some(()) },
    )
    .await;
    // The controller's socket is in its pod's emptyDir, where the
    // external-provisioner sidecar would reach it.
    // Its path is longer than a socket address may be (108 bytes), so it
    // is reached through a short symbolic link.
    let short = dir.path().join("controller.sock");
    let controller_socket = || {
        let pods = std::fs::read_dir(kubelet_root.join("pods")).ok()?;
        let socket = pods
            .flatten()
            .find(|p| {
                p.file_name()
                    .to_string_lossy()
                    .starts_with("default_test-alluxio-rs-csi-controller-")
            })?
            .path()
            .join("volumes/socket-dir/csi.sock");
        let _ = std::fs::remove_file(&short);
        std::os::unix::fs::symlink(&socket, &short).ok()?;
        listens(&short).then(|| short.clone())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let controller_socket = loop {
        if let Some(socket) = controller_socket() {
            break socket;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the controller does not listen:\n{}",
            kubelet.logs_of("default", "test-alluxio-rs-csi-controller-", "alluxio-csi")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _provisioner =
        Provisioner::start(client.clone(), "csi.alluxio.rs", &controller_socket).await;

    // A claim, provisioned and bound.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "dataset"},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "alluxio",
                 "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .unwrap();
    claims.create(&PostParams::default(), &claim).await.unwrap();
    let pv = eventually("the claim bound", Duration::from_secs(60), || async {
        claims.get("dataset").await.unwrap().spec?.volume_name
    })
    .await;
    // Proof that the Secret did it: a call that carries none is refused.
    let err = alluxio_proto::csi::controller_client::ControllerClient::new(
        alluxio_e2e::csi_client::csi_channel(&controller_socket).await,
    )
    .get_capacity(alluxio_proto::csi::GetCapacityRequest::default())
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    let volume_dir = format!("/csi/volumes/{pv}");
    assert!(
        cluster
            .client
            .get_status(&volume_dir, None)
            .await
            .unwrap()
            .folder
    );

    // The dataset: Parquet files written by pyarrow, copied into the volume.
    let local = dir.path().join("dataset");
    std::fs::create_dir_all(&local).unwrap();
    let out = Command::new(&python)
        .args(["-c", WRITER])
        .arg(&local)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for entry in std::fs::read_dir(&local).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let bytes = std::fs::read(entry.path()).unwrap();
        cluster
            .fs
            .write_file(
                &format!("{volume_dir}/{name}"),
                WriteType::CacheThrough,
                [Bytes::from(bytes)],
            )
            .await
            .unwrap();
    }

    // The reader pod mounts the claim at /opt/data.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "spark-reader"},
        "spec": {
            "nodeName": "node-0",
            "restartPolicy": "Never",
            "containers": [{
                "name": "reader", "image": "python:3",
                "command": ["python3", "-c", READER, "/opt/data"],
                "env": [{"name": "HOME", "value": "/tmp"},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "SPARK_LOCAL_IP", "value": "$(POD_IP)"},
                        {"name": "PYSPARK_PYTHON", "value": python.display().to_string()}],
                "volumeMounts": [{"name": "data", "mountPath": "/opt/data", "readOnly": true}],
            }],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "dataset"}}],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let phase = eventually(
        "the reader pod finished",
        Duration::from_secs(300),
        || async {
            let phase = pods.get("spark-reader").await.unwrap().status?.phase?;
            matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
        },
    )
    .await;
    let log = kubelet.log("default", "spark-reader", "reader");
    assert_eq!(phase, "Succeeded", "{log}");
    let through_volume = result_line(&log);
    let direct = read_directly(&python, &local);
    assert_eq!(through_volume, direct, "{log}");
    assert!(direct.starts_with("ROWS=60000 "), "{direct}");

    // Deleting the pod unpublishes and unstages; deleting the claim
    // deletes the volume.
    pods.delete("spark-reader", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !csi_mounts(&kubelet_root).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the volume is still mounted: {:#?}\nthe node plugin's log:\n{}",
            csi_mounts(&kubelet_root),
            kubelet.logs_of("default", "test-alluxio-rs-csi-node-", "alluxio-csi")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    claims
        .delete("dataset", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the volume deleted", Duration::from_secs(60), || async {
        cluster
            .client
            .get_status(&volume_dir, None)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    kubelet.stop().await;
}
