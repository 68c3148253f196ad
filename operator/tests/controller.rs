//! The watch-driven controllers (kube's runtime `Controller`) against the
//! test API server and a real master and worker (in process). The test
//! plays the kubelet's part by hand: it reports the master pod's IP and
//! readiness and the workloads' ready counts; the process kubelet test in
//! `e2e/` runs real pods instead.

mod common;

use alluxio_e2e::apiserver::TestApiServer;
use alluxio_e2e::kube_tools::{assert_chart_allows, CHART_OPERATOR_USER};
use alluxio_operator::build::names::Names;
use alluxio_operator::controller::mount::FINALIZER;
use alluxio_operator::crd::{AlluxioCluster, ClusterPhase, Mount, MountSpec};
use alluxio_testkit::cluster::MIB;
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use std::future::Future;
use std::time::Duration;

/// Waits up to 60 s for `check`.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, check: impl FnMut() -> F) -> T {
    alluxio_testkit::eventually(what, Duration::from_secs(60), check).await
}

fn example_cluster(rpc_port: u16) -> AlluxioCluster {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crds/examples/alluxiocluster.yaml");
    let mut c: AlluxioCluster =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    c.spec.master.rpc_port = i32::from(rpc_port);
    c
}

fn mount_spec(cluster: &str, path: &str, ufs: &str) -> MountSpec {
    MountSpec {
        cluster: cluster.into(),
        alluxio_path: path.into(),
        ufs: ufs.into(),
        options: Default::default(),
        read_only: false,
        shared: false,
        credentials: None,
        sync_interval: None,
    }
}

/// (type, reason) of the Events about the object called `name`, oldest first.
async fn events_about(client: &kube::Client, name: &str) -> Vec<(String, String)> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let mut list: Vec<Event> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    list.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
    list.into_iter()
        .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default()))
        .collect()
}

/// Waits for an Event of `type_` and `reason` about `name`.
async fn event_seen(client: &kube::Client, name: &str, type_: &str, reason: &str) {
    let what = format!("a {type_} Event {reason} about {name}");
    eventually(&what, || async {
        let seen = events_about(client, name).await;
        seen.iter()
            .any(|(t, r)| t == type_ && r == reason)
            .then_some(())
    })
    .await;
}

fn condition(m: &Mount) -> Option<(String, String)> {
    let c = m.status.as_ref()?.conditions.first()?;
    Some((c.status.clone(), c.reason.clone()))
}

/// What a kubelet and the workload controllers would report once the
/// master pod (at 127.0.0.1) and one worker are up.
async fn report_pods_ready(client: &kube::Client) {
    let names = Names::new("demo", "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some("demo-master-0".into()),
            labels: Some(names.labels("master")),
            ..Default::default()
        },
        ..Default::default()
    };
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let ready = json!({"status": {"podIP": "127.0.0.1",
        "conditions": [{"type": "Ready", "status": "True"}]}});
    let params = PatchParams::default();
    pods.patch_status("demo-master-0", &params, &Patch::Merge(&ready))
        .await
        .unwrap();
    Api::<StatefulSet>::namespaced(client.clone(), "default")
        .patch_status(
            "demo-master",
            &params,
            &Patch::Merge(json!({"status": {"replicas": 1, "readyReplicas": 1}})),
        )
        .await
        .unwrap();
    Api::<DaemonSet>::namespaced(client.clone(), "default")
        .patch_status(
            "demo-worker",
            &params,
            &Patch::Merge(
                json!({"status": {"desiredNumberScheduled": 1, "numberReady": 1,
                "currentNumberScheduled": 1, "numberMisscheduled": 0}}),
            ),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_bring_a_cluster_to_ready_and_mount_and_unmount_its_mounts() {
    let mut alluxio = alluxio_testkit::cluster::start(1, 64 * MIB, |_| {}).await;
    let rpc_port = alluxio.master.as_ref().unwrap().rpc_addr.port();
    let server = TestApiServer::start().await.unwrap();
    let client = server.client();
    common::register_crds(&client).await;
    // The controllers act as the chart's ServiceAccount, so the requests
    // they make can be checked against the chart's RBAC at the end.
    let common::RunningControllers {
        stop: stop_tx,
        running,
        registry,
    } = common::run_controllers(server.client_as(CHART_OPERATOR_USER));

    // The in-process master's key is the cluster's Secret, as if the
    // operator had created it and the pods had mounted it (the operator
    // keeps an existing Secret as it is).
    let mut secret = alluxio_operator::build::security::security_secret(
        &alluxio_operator::build::names::Names::new("demo", "default"),
        Default::default(),
        &alluxio.key(),
    );
    secret.metadata.owner_references = None;
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    // The cluster's objects appear; with its pods ready it becomes Ready
    // with the capacity the master reports.
    let clusters: Api<AlluxioCluster> = Api::namespaced(client.clone(), "default");
    clusters
        .create(&PostParams::default(), &example_cluster(rpc_port))
        .await
        .unwrap();
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    eventually("the master StatefulSet", || async {
        statefulsets.get_opt("demo-master").await.unwrap()
    })
    .await;
    let pending = clusters.get("demo").await.unwrap();
    eventually("a Pending status", || async {
        let c = clusters.get("demo").await.unwrap();
        (c.status?.phase? == ClusterPhase::Pending).then_some(())
    })
    .await;
    assert!(pending.metadata.generation.is_some());
    report_pods_ready(&client).await;
    let ready = eventually("phase Ready", || async {
        let c = clusters.get("demo").await.unwrap();
        let s = c.status?;
        (s.phase == Some(ClusterPhase::Ready)).then_some(s)
    })
    .await;
    assert_eq!(ready.tiers[0].capacity_bytes, 64 * MIB);
    assert_eq!(ready.workers.as_deref(), Some("1/1"));
    // spec.csi.enabled: a StorageClass for the cluster, held by a finalizer.
    let classes: Api<StorageClass> = Api::all(client.clone());
    let class = classes.get("alluxio-default-demo").await.unwrap();
    assert_eq!(class.provisioner, "csi.alluxio.rs");
    let demo = clusters.get("demo").await.unwrap();
    assert!(demo
        .metadata
        .finalizers
        .unwrap()
        .contains(&"alluxio.rs/storage-class".to_string()));
    let ready_condition = ready
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready_condition.status, "True");
    // What the operator did is told in Events, as kubectl describe shows them.
    event_seen(&client, "demo", "Normal", "Applied").await;
    event_seen(&client, "demo", "Normal", "StorageClassApplied").await;

    // A Mount of a local directory with two files: mounted, with usage.
    let ufs = tempfile::tempdir().unwrap();
    std::fs::write(ufs.path().join("a"), vec![1u8; 1000]).unwrap();
    std::fs::write(ufs.path().join("b"), vec![2u8; 3000]).unwrap();
    let mounts: Api<Mount> = Api::namespaced(client.clone(), "default");
    let ufs_uri = format!("file://{}", ufs.path().display());
    mounts
        .create(
            &PostParams::default(),
            &Mount::new("local", mount_spec("demo", "/local", &ufs_uri)),
        )
        .await
        .unwrap();
    let mounted = eventually("the Mount Ready", || async {
        let m = mounts.get("local").await.unwrap();
        (condition(&m)? == ("True".into(), "Mounted".into())).then_some(m)
    })
    .await;
    let status = mounted.status.unwrap();
    assert_eq!((status.ufs_files, status.ufs_bytes), (2, 4000));
    assert_eq!(status.cached.as_deref(), Some("0%"));
    assert!(mounted
        .metadata
        .finalizers
        .unwrap()
        .contains(&FINALIZER.to_string()));
    let table = alluxio.client.mount_table().await.unwrap();
    assert!(table
        .iter()
        .any(|e| e.alluxio_path == "/local" && e.ufs_uri == ufs_uri));

    // A Mount whose UFS cannot be reached says why and is retried.
    mounts
        .create(
            &PostParams::default(),
            &Mount::new(
                "gone",
                mount_spec("demo", "/gone", "file:///nonexistent/alluxio-rs"),
            ),
        )
        .await
        .unwrap();
    let (_, reason) = eventually("the failing Mount's condition", || async {
        condition(&mounts.get("gone").await.unwrap()).filter(|(s, _)| s == "False")
    })
    .await;
    assert_eq!(reason, "MountFailed");
    event_seen(&client, "local", "Normal", "Mounted").await;
    event_seen(&client, "gone", "Warning", "MountFailed").await;
    // A Mount of a cluster that does not exist says so.
    mounts
        .create(
            &PostParams::default(),
            &Mount::new("orphan", mount_spec("nope", "/orphan", &ufs_uri)),
        )
        .await
        .unwrap();
    let (_, reason) = eventually("the orphan Mount's condition", || async {
        condition(&mounts.get("orphan").await.unwrap())
    })
    .await;
    assert_eq!(reason, "ClusterNotFound");
    event_seen(&client, "orphan", "Warning", "ClusterNotFound").await;

    // Deleting a Mount unmounts it before it goes.
    mounts
        .delete("local", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Mount gone", || async {
        mounts
            .get_opt("local")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let table = alluxio.client.mount_table().await.unwrap();
    assert!(table.iter().all(|e| e.alluxio_path != "/local"));
    event_seen(&client, "local", "Normal", "Unmounted").await;

    // The master goes away and the configuration changes: the workloads
    // roll, and the cluster says its master does not answer.
    alluxio.master.take().unwrap().shutdown().await;
    clusters
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"properties": {"user.block_size": "32MiB"}}})),
        )
        .await
        .unwrap();
    event_seen(&client, "demo", "Normal", "Rolled").await;
    event_seen(&client, "demo", "Warning", "MasterUnavailable").await;

    // An invalid spec the schema cannot catch fails the cluster, without retries.
    clusters
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"properties": {"user.no_such_key": "1"}}})),
        )
        .await
        .unwrap();
    let failed = eventually("phase Failed", || async {
        let s = clusters.get("demo").await.unwrap().status?;
        (s.phase == Some(ClusterPhase::Failed)).then_some(s)
    })
    .await;
    assert_eq!(failed.conditions[0].reason, "InvalidSpec");
    assert!(
        failed.conditions[0].message.contains("no_such_key"),
        "{:?}",
        failed.conditions
    );
    event_seen(&client, "demo", "Warning", "InvalidSpec").await;

    // Deleting the cluster with a Mount left: the Mount can still be
    // deleted (there is no mount table left to clean).
    clusters
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the cluster and its StorageClass gone", || async {
        let gone = clusters.get_opt("demo").await.unwrap().is_none()
            && classes
                .get_opt("alluxio-default-demo")
                .await
                .unwrap()
                .is_none();
        gone.then_some(())
    })
    .await;
    mounts
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Mount of the deleted cluster gone", || async {
        mounts
            .get_opt("gone")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("alluxio_operator_reconciles_total{controller=\"mount\"}"),
        "{text}"
    );
    assert!(
        text.contains("alluxio_operator_reconcile_failures_total{controller=\"mount\",reason=\"MountFailed\"}"),
        "{text}"
    );
    assert!(text.contains(
        "alluxio_operator_reconcile_duration_seconds_count{controller=\"alluxiocluster\"}"
    ));

    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("controllers stop on shutdown")
        .unwrap();
    assert_chart_allows(&server.requests_of(CHART_OPERATOR_USER));
}
