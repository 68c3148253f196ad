//! A cluster with `spec.tls` in the simulation (see `common/mod.rs`): the
//! certificate Secret a user (or cert-manager) made is mounted into the
//! master and worker pods, which serve only TLS; the operator reaches the
//! master with the Secret's CA to report the cluster Ready; a client with
//! the CA writes and reads through the worker's gRPC port and data port;
//! a client without TLS gets nowhere; the CA and server name reach the
//! cluster's Secret for the CSI plugin. Needs root (mount namespaces).

mod common;

use alluxio_operator::crd::ClusterPhase;
use alluxio_testkit::tls::TlsFiles;
use common::{eventually, Simulation};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use std::collections::BTreeMap;

const SERVER_NAME: &str = "secure.default.alluxio";

/// The Secret cert-manager would write for a Certificate of `files`.
fn tls_secret(files: &TlsFiles) -> Secret {
    let read = |name: &str| ByteString(std::fs::read(files.dir.join(name)).unwrap());
    Secret {
        metadata: ObjectMeta {
            name: Some("secure-tls".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("ca.crt".to_string(), read("ca.crt")),
            ("tls.crt".to_string(), read("master.crt")),
            ("tls.key".to_string(), read("master.key")),
        ])),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tls_cluster_serves_only_tls_and_the_operator_reaches_it() {
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = TlsFiles::generate_for(certs_dir.path(), &[&format!("DNS:{SERVER_NAME}")]);
    let yaml =
        common::cluster_yaml("secure", 1, "EmptyDir") + "  tls:\n    secretName: secure-tls\n";
    let Some(sim) = Simulation::start_with("secure", &yaml, vec![tls_secret(&certs)]).await else {
        return;
    };
    // Ready means the operator read the master's status, over TLS.
    eventually("the cluster Ready", || async {
        (sim.status().await?.phase == Some(ClusterPhase::Ready)).then_some(())
    })
    .await;
    // The CA and server name are handed to CSI through the cluster's
    // Secret.
    let security = kube::Api::<Secret>::namespaced(sim.client.clone(), "default")
        .get("secure-security")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(
        security["ca.crt"].0,
        std::fs::read(certs.ca()).unwrap(),
        "the CA copied"
    );
    assert_eq!(security["tls-server-name"].0, SERVER_NAME.as_bytes());
    let masters = sim.master_addresses(1).await.unwrap();
    let ca = certs.ca().display().to_string();
    let tls_flags = [
        "-D",
        "security.tls.enabled=true",
        "-D",
        &format!("security.tls.ca_file={ca}"),
        "-D",
        &format!("security.tls.server_name={SERVER_NAME}"),
        // Reads of cached blocks through the worker's data port.
        "-D",
        "user.short_circuit=false",
    ];
    let with_tls = |args: &[&str]| {
        let all: Vec<&str> = tls_flags
            .iter()
            .copied()
            .chain(args.iter().copied())
            .collect();
        sim.cli(&masters, &all)
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let path = format!("/tls-{}-{nanos}.txt", std::process::id());
    let local = sim.scratch().join("hello.txt");
    std::fs::write(&local, "over TLS all the way\n").unwrap();
    // Cached only: the read below can come from nowhere but the worker.
    eventually("a write through the worker over TLS", || async {
        let out = with_tls(&[
            "-D",
            "user.write_type=MUST_CACHE",
            "fs",
            "copyFromLocal",
            local.to_str().unwrap(),
            &path,
        ]);
        out.status.success().then_some(())
    })
    .await;
    let out = with_tls(&["fs", "cat", &path]);
    assert!(
        out.status.success(),
        "{}\nworker log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        sim.kubelet.log("default", "secure-worker-node-0", "worker")
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "over TLS all the way\n"
    );

    // Without TLS, or trusting another CA, nothing is answered.
    let plain = sim.cli(&masters, &["fs", "ls", "/"]);
    assert!(!plain.status.success());
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(!stderr.contains("tls-"), "{stderr}");
    let other_dir = tempfile::tempdir().unwrap();
    let other = TlsFiles::generate_for(other_dir.path(), &[&format!("DNS:{SERVER_NAME}")]);
    let misled = sim.cli(
        &masters,
        &[
            "-D",
            "security.tls.enabled=true",
            "-D",
            &format!("security.tls.ca_file={}", other.ca().display()),
            "-D",
            &format!("security.tls.server_name={SERVER_NAME}"),
            "fs",
            "ls",
            "/",
        ],
    );
    let stderr = String::from_utf8_lossy(&misled.stderr);
    assert!(
        !misled.status.success() && stderr.contains("certificate"),
        "{stderr}"
    );
    sim.stop().await;
}
