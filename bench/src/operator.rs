//! The operator in the simulation (test API server + process kubelet):
//!
//! - `apply_to_ready`: time from `kubectl apply` of the example cluster
//!   to `kubectl wait --for=condition=Ready` succeeding, next to starting
//!   the same master and two workers as bare processes until the master
//!   sees both workers (what the operator and kubelet add on top).
//! - `memory`: the operator process's RSS idle, and after it has
//!   reconciled 100 AlluxioClusters and 1,000 Mounts (target: < 64 MiB).

use crate::report::{median, write, Bar};
use alluxio_e2e::kube_tools::{api_server_with_crds, repo_dir};
use alluxio_e2e::kubelet::{KubeletConfig, Node, ProcessKubelet};
use alluxio_operator::crd::{AlluxioCluster, Mount, MountSpec};
use alluxio_testkit::TerminateOnDrop;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn start_operator(binary: &Path, kubeconfig: &Path) -> TerminateOnDrop {
    TerminateOnDrop(
        Command::new(binary)
            .args(["run", "--metrics-address", "127.0.0.1:0"])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("alluxio-operator starts"),
    )
}

async fn k(config: &Path, args: &[&str]) -> (bool, String) {
    alluxio_e2e::kube_tools::kubectl_async(config, args).await
}

/// Median of the apply-to-Ready time over `rounds`, next to bare processes.
pub async fn apply_to_ready(out: &Path, rounds: usize, alluxio: &Path, operator: &Path) {
    let mut simulated = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..rounds {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (server, config) = api_server_with_crds(dir.path()).await;
        let _operator = start_operator(operator, &config);
        let kubelet = ProcessKubelet::start(
            server.client(),
            KubeletConfig {
                nodes: vec![
                    Node::new("node-0", &[("alluxio.rs/cache", "true")]),
                    Node::new("node-1", &[("alluxio.rs/cache", "true")]),
                ],
                images: vec![("ghcr.io/alluxio-rs/alluxio".into(), alluxio.to_path_buf())],
                local_images: vec![],
                root: dir.path().join("kubelet"),
                csi: None,
                in_cluster: None,
            },
        );
        let example = repo_dir().join("crds/examples/alluxiocluster.yaml");
        let started = Instant::now();
        let (ok, out) = k(
            &config,
            &["apply", "--validate=false", "-f", example.to_str().unwrap()],
        )
        .await;
        assert!(ok, "{out}");
        let (ok, out) = k(
            &config,
            &[
                "wait",
                "--for=condition=Ready",
                "alluxiocluster/demo",
                "--timeout=300s",
            ],
        )
        .await;
        if !ok {
            let (_, state) = k(&config, &["get", "pods,alluxioclusters", "-o", "wide"]).await;
            panic!(
                "{out}\n{state}\nmaster log:\n{}\nworker log:\n{}",
                kubelet.log("default", "demo-master-0", "master"),
                kubelet.log("default", "demo-worker-node-0", "worker")
            );
        }
        simulated.push(started.elapsed().as_secs_f64());
        kubelet.stop().await;

        bare.push(bare_start(alluxio, dir.path()).await);
    }
    let (sim, plain) = (median(simulated.clone()), median(bare.clone()));
    write(
        out,
        "operator_apply_to_ready",
        "seconds",
        &[
            Bar {
                label: "kubectl apply -> Ready".into(),
                value: sim,
            },
            Bar {
                label: "bare processes -> 2 workers".into(),
                value: plain,
            },
        ],
        json!({"rounds": rounds, "simulated_s": simulated, "bare_s": bare,
               "note": "median of the rounds; the simulation polls every 250 ms and probes every 5 s"}),
    );
}

/// Seconds from starting `alluxio master` and two workers until the
/// master lists both workers.
async fn bare_start(alluxio: &Path, dir: &Path) -> f64 {
    let conf = dir.join("bare.yaml");
    std::fs::write(
        &conf,
        format!(
            "master:\n  rpc_port: 39998\n  web_port: 39999\n  journal:\n    dir: {0}/bare/journal\n\
             worker:\n  heartbeat_interval: 1s\nsecurity:\n  key_file: {0}/bare/cluster.key\n",
            dir.display()
        ),
    )
    .expect("write config");
    let started = Instant::now();
    let spawn = |args: Vec<String>| {
        TerminateOnDrop(
            Command::new(alluxio)
                .arg("--conf")
                .arg(&conf)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("alluxio starts"),
        )
    };
    let _master = spawn(vec!["master".into()]);
    let _workers: Vec<TerminateOnDrop> = (0..2)
        .map(|i| {
            spawn(vec![
                "--master".into(),
                "127.0.0.1:39998".into(),
                "worker".into(),
                "--hostname".into(),
                format!("127.0.0.{}", i + 2),
                "--data-dir".into(),
                dir.join(format!("bare/worker-{i}")).display().to_string(),
            ])
        })
        .collect();
    loop {
        let report = Command::new(alluxio)
            .args(["--master", "127.0.0.1:39998", "fsadmin", "report"])
            .output();
        if let Ok(o) = report {
            let text = String::from_utf8_lossy(&o.stdout);
            if o.status.success() && text.contains("Live Workers: 2") {
                return started.elapsed().as_secs_f64();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "bare cluster never came up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rss_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Operator RSS idle and with `clusters` clusters and `mounts` Mounts.
pub async fn memory(out: &Path, clusters: usize, mounts: usize, operator: &Path) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (server, config) = api_server_with_crds(dir.path()).await;
    let op = start_operator(operator, &config);
    let pid = op.0.id();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = rss_mib(pid, "VmRSS:");

    let client = server.client();
    let example: AlluxioCluster = serde_yaml::from_str(
        &std::fs::read_to_string(repo_dir().join("crds/examples/alluxiocluster.yaml")).unwrap(),
    )
    .unwrap();
    let cluster_api: Api<AlluxioCluster> = Api::namespaced(client.clone(), "default");
    let mount_api: Api<Mount> = Api::namespaced(client.clone(), "default");
    for c in 0..clusters {
        let mut cluster = example.clone();
        cluster.metadata.name = Some(format!("c{c}"));
        cluster_api
            .create(&PostParams::default(), &cluster)
            .await
            .unwrap();
    }
    for m in 0..mounts {
        let spec = MountSpec {
            cluster: format!("c{}", m % clusters),
            alluxio_path: format!("/m{m}"),
            ufs: format!("s3://bucket/m{m}"),
            options: Default::default(),
            read_only: true,
            shared: false,
            credentials: None,
            sync_interval: None,
        };
        mount_api
            .create(&PostParams::default(), &Mount::new(&format!("m{m}"), spec))
            .await
            .unwrap();
    }
    // Wait until every object has been reconciled at least once.
    let started = Instant::now();
    loop {
        let with_status = cluster_api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|c| c.status.is_some())
            .count()
            + mount_api
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .filter(|m| m.status.is_some())
                .count();
        if with_status == clusters + mounts {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "not all reconciled"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let reconciled_in = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let loaded = rss_mib(pid, "VmRSS:");
    let peak = rss_mib(pid, "VmHWM:");
    write(
        out,
        "operator_memory",
        "MiB RSS",
        &[
            Bar {
                label: format!("{clusters} clusters, {mounts} mounts"),
                value: loaded,
            },
            Bar {
                label: "idle".into(),
                value: idle,
            },
            Bar {
                label: "peak (VmHWM)".into(),
                value: peak,
            },
            Bar {
                label: "target".into(),
                value: 64.0,
            },
        ],
        json!({"clusters": clusters, "mounts": mounts, "idle_mib": idle, "loaded_mib": loaded,
               "peak_mib": peak, "all_reconciled_after_s": reconciled_in}),
    );
}
