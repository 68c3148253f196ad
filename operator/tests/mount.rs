//! The Mount reconciler against the test API server and a real master
//! (in process), with an S3 bucket on moto and credentials from a Secret.

use alluxio_client::MasterClient;
use alluxio_common::auth::{ClusterKey, Credentials, Role};
use alluxio_e2e::apiserver::TestApiServer;
use alluxio_operator::controller::mount::{reconcile_mount, Outcome, FINALIZER};
use alluxio_operator::controller::Context;
use alluxio_operator::crd::{Mount, MountSpec};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{CustomResourceExt, ResourceExt};
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_is_mounted_with_its_secret_and_unmounted_before_it_goes() {
    let Some(s3) = alluxio_testkit::s3::S3Server::start() else {
        return;
    };
    s3.create_bucket("datasets");
    let dir = tempfile::tempdir().unwrap();
    let master_config = alluxio_testkit::cluster::config(dir.path());
    let master = alluxio_master::MasterServer::start(&master_config)
        .await
        .unwrap();
    // The operator calls as the operator, with the cluster's key.
    let key = ClusterKey::load(&master_config.security.key_file).unwrap();
    let operator = Credentials::from_key(
        key,
        "alluxio-operator",
        &[],
        Role::Operator,
        Duration::from_secs(3600),
    );
    let master_client = MasterClient::connect(
        &master.rpc_addr.to_string(),
        Duration::from_secs(10),
        operator,
    )
    .await
    .unwrap();
    let server = TestApiServer::start().await.unwrap();
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.default_namespace = "default".into();
    let client = kube::Client::try_from(config).unwrap();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &Mount::crd())
        .await
        .unwrap();

    // Plain options in the spec, keys in a Secret.
    let options: BTreeMap<String, String> = s3.options().into_iter().collect();
    let secret_keys = ["access_key_id", "secret_access_key"];
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("s3".into()),
            ..Default::default()
        },
        string_data: Some(
            options
                .iter()
                .filter(|(k, _)| secret_keys.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let spec = MountSpec {
        cluster: "demo".into(),
        alluxio_path: "/datasets".into(),
        ufs: "s3://datasets/tables".into(),
        options: options
            .iter()
            .filter(|(k, _)| !secret_keys.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        read_only: true,
        shared: false,
        credentials: Some(alluxio_operator::crd::mount::SecretReference { name: "s3".into() }),
        sync_interval: None,
    };
    let mounts: Api<Mount> = Api::namespaced(client.clone(), "default");
    mounts
        .create(&PostParams::default(), &Mount::new("datasets", spec))
        .await
        .unwrap();
    let cx = Context::new(client.clone(), "alluxio-operator", Default::default());

    let m = mounts.get("datasets").await.unwrap();
    assert_eq!(
        reconcile_mount(&cx, &master_client, &m).await.unwrap(),
        Outcome::Applied
    );
    let table = master_client.mount_table().await.unwrap();
    let entry = table
        .iter()
        .find(|e| e.alluxio_path == "/datasets")
        .unwrap();
    assert_eq!(entry.ufs_uri, "s3://datasets/tables");
    assert!(entry.read_only);
    assert!(entry.options.contains_key("secret_access_key"));
    let m = mounts.get("datasets").await.unwrap();
    assert!(m.finalizers().contains(&FINALIZER.to_string()));
    let status = m.status.clone().unwrap();
    assert!(status.mounted);
    assert_eq!(status.conditions[0].status, "True");
    assert!(status.credentials_hash.is_some());
    // Nothing to do the second time.
    reconcile_mount(&cx, &master_client, &m).await.unwrap();

    // Deleting waits for the finalizer: the reconciler unmounts, then it goes.
    mounts
        .delete("datasets", &DeleteParams::default())
        .await
        .unwrap();
    let m = mounts.get("datasets").await.unwrap();
    assert!(m.metadata.deletion_timestamp.is_some());
    assert_eq!(
        reconcile_mount(&cx, &master_client, &m).await.unwrap(),
        Outcome::Removed
    );
    assert!(mounts.get_opt("datasets").await.unwrap().is_none());
    let table = master_client.mount_table().await.unwrap();
    assert!(table.iter().all(|e| e.alluxio_path != "/datasets"));
    master.shutdown().await;
}
