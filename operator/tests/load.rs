//! The Load reconciler against the test API server and a real cluster in
//! process (a master and two workers): a run followed to the end with its
//! progress in the status, Once and OnChange, a spec change, a deleted
//! Load stopping its job, a bad spec and a missing cluster.

use alluxio_client::MasterClient;
use alluxio_common::auth::Role;
use alluxio_e2e::apiserver::TestApiServer;
use alluxio_operator::controller::load::{reconcile, reconcile_load, FINALIZER};
use alluxio_operator::controller::Context;
use alluxio_operator::crd::{Load, LoadPolicy, LoadSpec};
use alluxio_proto::grpc::{JobState, WriteType};
use alluxio_testkit::cluster::{data, start, MIB};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{CustomResourceExt, ResourceExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn spec(path: &str) -> LoadSpec {
    LoadSpec {
        cluster: "demo".into(),
        path: Some(path.into()),
        mount: None,
        replicas: 1,
        bandwidth: None,
        schedule: None,
        policy: LoadPolicy::Once,
        verify: false,
    }
}

/// Reconciles `name` as the controller would (again after each requeue)
/// until its phase is not Running; returns the phases seen and progress
/// percentages seen while running.
async fn run_to_end(
    cx: &Context,
    master: &MasterClient,
    loads: &Api<Load>,
    name: &str,
) -> (Load, Vec<u32>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut progress = Vec::new();
    loop {
        let load = loads.get(name).await.unwrap();
        reconcile_load(cx, master, &load).await.unwrap();
        let load = loads.get(name).await.unwrap();
        let status = load.status.clone().unwrap();
        match status.phase.as_deref() {
            Some("Running") => progress.push(status.percent),
            _ => return (load, progress),
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not finish: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_resource_runs_a_job_and_shows_its_progress() {
    let c = start(2, 256 * MIB, |_| {}).await;
    std::fs::create_dir_all(c.ufs.join("warm")).unwrap();
    for i in 0..12 {
        std::fs::write(
            c.ufs.join(format!("warm/f{i:02}")),
            data((2 * MIB) as usize, i),
        )
        .unwrap();
    }
    let operator = MasterClient::connect(
        &c.master().rpc_addr.to_string(),
        Duration::from_secs(10),
        c.credentials("alluxio-operator", Role::Operator),
    )
    .await
    .unwrap();
    let server = TestApiServer::start().await.unwrap();
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.default_namespace = "default".into();
    let client = kube::Client::try_from(config).unwrap();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &Load::crd())
        .await
        .unwrap();
    let loads: Api<Load> = Api::namespaced(client.clone(), "default");
    let cx = Context::new(client.clone(), "alluxio-operator", Default::default());

    // Paced, so that the reconciler sees it running.
    let paced = LoadSpec {
        bandwidth: Some("8MiB/s".into()),
        ..spec("/warm")
    };
    loads
        .create(&PostParams::default(), &Load::new("warm", paced))
        .await
        .unwrap();
    let (load, progress) = run_to_end(&cx, &operator, &loads, "warm").await;
    let status = load.status.clone().unwrap();
    assert!(load.finalizers().contains(&FINALIZER.to_string()));
    assert_eq!(status.phase.as_deref(), Some("Succeeded"), "{status:?}");
    assert_eq!((status.files_done, status.files_total), (12, 12));
    assert_eq!(status.bytes_fetched, 24 * MIB);
    assert_eq!(status.progress.as_deref(), Some("100%"));
    assert!(
        status.throughput.is_none() && status.eta.is_none(),
        "cleared at the end"
    );
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    assert_eq!(status.conditions[0].type_, "Complete");
    assert_eq!(status.conditions[0].status, "True");
    assert!(
        progress.len() >= 2,
        "the run was seen running: {progress:?}"
    );
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert!(progress.iter().any(|p| *p > 0 && *p < 100), "{progress:?}");
    let job = operator.get_job(status.job_id.unwrap()).await.unwrap();
    assert_eq!(job.state(), JobState::Succeeded);

    // Once: nothing more until the spec changes.
    reconcile_load(&cx, &operator, &load).await.unwrap();
    assert_eq!(loads.get("warm").await.unwrap().status.unwrap().runs, 1);
    let mut changed = loads.get("warm").await.unwrap();
    changed.spec.replicas = 2;
    changed.spec.bandwidth = None;
    loads
        .replace("warm", &PostParams::default(), &changed)
        .await
        .unwrap();
    let (load, _) = run_to_end(&cx, &operator, &loads, "warm").await;
    let status = load.status.unwrap();
    assert_eq!(
        (status.runs, status.phase.as_deref()),
        (2, Some("Succeeded"))
    );
    assert_eq!(status.bytes_fetched, 24 * MIB, "the second copies");

    // OnChange: runs again only when the files under the path change.
    let on_change = LoadSpec {
        policy: LoadPolicy::OnChange,
        ..spec("/warm")
    };
    loads
        .create(&PostParams::default(), &Load::new("follow", on_change))
        .await
        .unwrap();
    let (load, _) = run_to_end(&cx, &operator, &loads, "follow").await;
    assert_eq!(load.status.as_ref().unwrap().runs, 1);
    reconcile_load(&cx, &operator, &load).await.unwrap();
    assert_eq!(
        loads.get("follow").await.unwrap().status.unwrap().runs,
        1,
        "nothing changed"
    );
    c.fs.write_file(
        "/warm/new",
        WriteType::CacheThrough,
        [bytes::Bytes::from(data(1000, 9))],
    )
    .await
    .unwrap();
    let load = loads.get("follow").await.unwrap();
    reconcile_load(&cx, &operator, &load).await.unwrap();
    let (load, _) = run_to_end(&cx, &operator, &loads, "follow").await;
    let status = load.status.unwrap();
    assert_eq!(status.runs, 2, "a new file started a new run");
    assert_eq!(status.files_total, 13);

    // A deleted Load stops its running job, then goes.
    let slow = LoadSpec {
        bandwidth: Some("1MiB/s".into()),
        replicas: 2,
        ..spec("/warm")
    };
    std::fs::create_dir_all(c.ufs.join("slow")).unwrap();
    for i in 0..4 {
        std::fs::write(
            c.ufs.join(format!("slow/f{i}")),
            data((2 * MIB) as usize, i),
        )
        .unwrap();
    }
    let slow = LoadSpec {
        path: Some("/slow".into()),
        ..slow
    };
    loads
        .create(&PostParams::default(), &Load::new("slow", slow))
        .await
        .unwrap();
    reconcile_load(&cx, &operator, &loads.get("slow").await.unwrap())
        .await
        .unwrap();
    let id = loads
        .get("slow")
        .await
        .unwrap()
        .status
        .unwrap()
        .job_id
        .unwrap();
    assert_eq!(
        operator.get_job(id).await.unwrap().state(),
        JobState::Running
    );
    loads
        .delete("slow", &DeleteParams::default())
        .await
        .unwrap();
    reconcile_load(&cx, &operator, &loads.get("slow").await.unwrap())
        .await
        .unwrap();
    assert!(loads.get_opt("slow").await.unwrap().is_none());
    assert_eq!(
        operator.get_job(id).await.unwrap().state(),
        JobState::Stopped
    );

    // A bad spec is refused with the reason in the status.
    let bad = LoadSpec {
        schedule: Some("daily".into()),
        ..spec("/warm")
    };
    loads
        .create(&PostParams::default(), &Load::new("bad", bad))
        .await
        .unwrap();
    let err = reconcile_load(&cx, &operator, &loads.get("bad").await.unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("spec.schedule"), "{err}");
    let status = loads.get("bad").await.unwrap().status.unwrap();
    assert_eq!(status.conditions[0].reason, "InvalidSpec");
    assert_eq!(status.phase.as_deref(), Some("Pending"));

    // A Load of a cluster that does not exist says so.
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(
            &PostParams::default(),
            &alluxio_operator::crd::AlluxioCluster::crd(),
        )
        .await
        .unwrap();
    let orphan = LoadSpec {
        cluster: "nope".into(),
        ..spec("/warm")
    };
    loads
        .create(&PostParams::default(), &Load::new("orphan", orphan))
        .await
        .unwrap();
    reconcile(&cx, Arc::new(loads.get("orphan").await.unwrap()))
        .await
        .unwrap();
    let status = loads.get("orphan").await.unwrap().status.unwrap();
    assert_eq!(status.conditions[0].reason, "ClusterNotFound");
    assert!(status.conditions[0].message.contains("nope"));
}
