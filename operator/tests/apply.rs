//! Applying an AlluxioCluster against the test API server, over HTTP with
//! the kube client, as the operator does in a cluster.

use alluxio_e2e::apiserver::TestApiServer;
use alluxio_operator::build::workloads::config_hash_of;
use alluxio_operator::controller::cluster::{apply_cluster, ApplyError};
use alluxio_operator::controller::{Context, ReconcileError};
use alluxio_operator::crd::{AlluxioCluster, Mount};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{CustomResourceExt, ResourceExt};

async fn client(server: &TestApiServer) -> kube::Client {
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.default_namespace = "default".into();
    kube::Client::try_from(config).unwrap()
}

fn example() -> AlluxioCluster {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crds/examples/alluxiocluster.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hash(ds: &DaemonSet) -> String {
    config_hash_of(&ds.spec.as_ref().unwrap().template)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_cluster_is_applied_idempotently_rolled_on_change_and_collected_on_delete() {
    let server = TestApiServer::start().await.unwrap();
    let client = client(&server).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [AlluxioCluster::crd(), Mount::crd()] {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let clusters: Api<AlluxioCluster> = Api::namespaced(client.clone(), "default");
    let cluster = clusters
        .create(&PostParams::default(), &example())
        .await
        .unwrap();
    let cx = Context::new(client.clone(), "alluxio-operator", Default::default());
    apply_cluster(&cx, &cluster).await.unwrap();

    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let cm = config_maps.get("demo-config").await.unwrap();
    assert!(cm.data.unwrap()["alluxio.yaml"].contains("128MiB"));
    services.get("demo-master").await.unwrap();
    services.get("demo-master-headless").await.unwrap();
    let sts = statefulsets.get("demo-master").await.unwrap();
    assert_eq!(sts.owner_references()[0].uid, cluster.uid().unwrap());
    let ds = daemonsets.get("demo-worker").await.unwrap();
    // The NetworkPolicy fences the RPC and data ports (on by default).
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), "default");
    let policy = policies.get("demo-alluxio").await.unwrap();
    assert_eq!(policy.owner_references()[0].uid, cluster.uid().unwrap());
    let selected = policy
        .spec
        .unwrap()
        .pod_selector
        .unwrap()
        .match_labels
        .unwrap();
    assert_eq!(selected["app.kubernetes.io/instance"], "demo");

    // Applying again changes nothing.
    apply_cluster(&cx, &cluster).await.unwrap();
    let again = daemonsets.get("demo-worker").await.unwrap();
    assert_eq!(again.resource_version(), ds.resource_version());

    // A configuration change rolls the workers.
    let mut changed = cluster.clone();
    changed
        .spec
        .properties
        .insert("user.block_size".into(), "256MiB".into());
    apply_cluster(&cx, &changed).await.unwrap();
    let rolled = daemonsets.get("demo-worker").await.unwrap();
    assert_ne!(hash(&rolled), hash(&ds));

    // Turned off, it goes.
    let mut open = cluster.clone();
    open.spec.network_policy.enabled = false;
    apply_cluster(&cx, &open).await.unwrap();
    assert!(policies.get_opt("demo-alluxio").await.unwrap().is_none());
    apply_cluster(&cx, &open).await.unwrap();

    // A spec the operator cannot build is refused before anything is applied.
    let mut bad = cluster.clone();
    bad.spec
        .properties
        .insert("user.no_such_key".into(), "1".into());
    let err = apply_cluster(&cx, &bad).await.unwrap_err();
    assert!(matches!(err, ApplyError::Invalid(_)), "{err}");
    assert_eq!(err.reason(), "InvalidSpec");

    // Deleting the cluster collects what it owns.
    clusters
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    assert!(statefulsets.get_opt("demo-master").await.unwrap().is_none());
    assert!(daemonsets.get_opt("demo-worker").await.unwrap().is_none());
    assert!(config_maps.get_opt("demo-config").await.unwrap().is_none());
}
