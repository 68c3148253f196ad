//! The `alluxio-operator run` process against the test API server: two
//! replicas elect one leader through a Lease, serve `/healthz`, `/readyz`
//! and `/metrics`, and on SIGTERM the leader releases the Lease so the
//! standby takes over at once.

use alluxio_e2e::apiserver::TestApiServer;
use alluxio_e2e::kube_tools::{assert_chart_allows, CHART_OPERATOR_USER};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    alluxio_testkit::free_port().expect("a free port")
}

struct Replica {
    child: Child,
    port: u16,
}

impl Replica {
    fn start(kubeconfig: &std::path::Path, name: &str) -> Replica {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_alluxio-operator"))
            .args(["run", "--metrics-address", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", name)
            .env("POD_NAMESPACE", "default")
            .spawn()
            .unwrap();
        Replica { child, port }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let address = format!("127.0.0.1:{}", self.port);
        alluxio_testkit::http_get::http_get(&address, path)
            .await
            .ok()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        alluxio_testkit::signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the operator did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("alluxio-operator")
        .await
        .unwrap()?
        .spec?
        .holder_identity
}

async fn wait_for_holder(leases: &Api<Lease>, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while holder(leases).await.as_deref() != Some(want) {
        assert!(Instant::now() < deadline, "{want} never held the Lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_hands_over_on_sigterm() {
    let server = TestApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // As the chart's ServiceAccount, to check its RBAC at the end.
    let user = CHART_OPERATOR_USER;
    std::fs::write(&kubeconfig, server.kubeconfig_as(user)).unwrap();
    let leases: Api<Lease> = Api::namespaced(server.client(), "default");

    let mut first = Replica::start(&kubeconfig, "operator-a");
    wait_for_holder(&leases, "operator-a").await;
    let mut second = Replica::start(&kubeconfig, "operator-b");
    // Both are up and ready; only the leader says so in its metrics.
    for replica in [&first, &second] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while replica.get("/readyz").await.map(|r| r.0) != Some(200) {
            assert!(Instant::now() < deadline, "replica never ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(replica.get("/healthz").await.unwrap().0, 200);
    }
    let (_, metrics) = first.get("/metrics").await.unwrap();
    assert!(metrics.contains("alluxio_operator_leader 1"), "{metrics}");
    let (_, metrics) = second.get("/metrics").await.unwrap();
    assert!(metrics.contains("alluxio_operator_leader 0"), "{metrics}");
    assert_eq!(holder(&leases).await.as_deref(), Some("operator-a"));

    // SIGTERM: the leader stops cleanly and gives the Lease up; the
    // standby takes it without waiting for it to expire.
    let status = first.terminate();
    assert!(status.success(), "{status:?}");
    wait_for_holder(&leases, "operator-b").await;
    let lease = leases.get("alluxio-operator").await.unwrap();
    assert_eq!(lease.spec.unwrap().lease_transitions, Some(1));
    let (_, metrics) = second.get("/metrics").await.unwrap();
    assert!(metrics.contains("alluxio_operator_leader 1"), "{metrics}");
    assert!(second.terminate().success());
    // The last leader gave the Lease up too (holder cleared, 1 s duration).
    let spec = leases.get("alluxio-operator").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity, None);
    assert_eq!(spec.lease_duration_seconds, Some(1));
    let requests = server.requests_of(user);
    assert!(requests
        .iter()
        .any(|r| r.resource == "leases" && r.verb == "update"));
    assert_chart_allows(&requests);
}
