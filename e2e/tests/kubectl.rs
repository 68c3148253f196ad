//! The real kubectl against the test API server.

use alluxio_e2e::apiserver::TestApiServer;
use alluxio_e2e::kube_tools::{kubectl, require_kubectl};
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_crds_and_examples_gets_and_deletes() {
    if require_kubectl().is_none() {
        return;
    }
    let server = TestApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, server.kubeconfig()).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let (config2, repo2, dir2) = (config.clone(), repo.clone(), dir.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        let crds = repo2.join("crds");
        let (ok, out) = kubectl(&config2, &["apply", "--validate=false", "-f", crds.to_str().unwrap()]);
        assert!(ok, "{out}");
        let (ok, out) = kubectl(&config2, &["wait", "--for=condition=Established", "crd/mounts.alluxio.rs", "--timeout=10s"]);
        assert!(ok, "{out}");
        let examples = repo2.join("crds/examples");
        let (ok, out) = kubectl(&config2, &["apply", "--validate=false", "-f", examples.to_str().unwrap()]);
        assert!(ok, "{out}");
        // The schema fills defaults and refuses bad resources at apply.
        let (_, port) = kubectl(&config2, &["get", "ac", "demo", "-o", "jsonpath={.spec.master.rpcPort}"]);
        assert_eq!(port, "19998");
        let bad = dir2.join("bad.yaml");
        std::fs::write(
            &bad,
            "apiVersion: alluxio.rs/v1alpha1\nkind: Mount\nmetadata:\n  name: bad\nspec:\n  cluster: demo\n  alluxioPath: data\n  ufs: s3://b/p\n",
        )
        .unwrap();
        let (ok, out) = kubectl(&config2, &["apply", "--validate=false", "-f", bad.to_str().unwrap()]);
        assert!(!ok && out.contains("spec.alluxioPath in body should match"), "{out}");
        std::fs::write(
            &bad,
            "apiVersion: alluxio.rs/v1alpha1\nkind: AlluxioCluster\nmetadata:\n  name: bad\nspec:\n  master:\n    replicas: 2\n",
        )
        .unwrap();
        let (ok, out) = kubectl(&config2, &["apply", "--validate=false", "-f", bad.to_str().unwrap()]);
        assert!(!ok && out.contains("Unsupported value: 2"), "{out}");
        // CEL rules: each tier alias once; a Mount's cluster is immutable.
        std::fs::write(
            &bad,
            concat!(
                "apiVersion: alluxio.rs/v1alpha1\nkind: AlluxioCluster\nmetadata:\n  name: twice\n",
                "spec:\n  worker:\n    tiers:\n",
                "    - {alias: MEM, medium: Memory, quota: 1Gi}\n",
                "    - {alias: MEM, medium: Memory, quota: 2Gi}\n",
            ),
        )
        .unwrap();
        let (ok, out) = kubectl(&config2, &["apply", "--validate=false", "-f", bad.to_str().unwrap()]);
        assert!(!ok && out.contains("may appear only once"), "{out}");
        let (ok, out) = kubectl(&config2, &["patch", "mount", "datasets", "--type", "merge", "-p", r#"{"spec":{"cluster":"other"}}"#]);
        assert!(!ok && out.contains("cannot move to another cluster"), "{out}");
        // The printer columns of the CRD.
        let (ok, out) = kubectl(&config2, &["get", "alluxioclusters"]);
        assert!(ok && out.contains("demo"), "{out}");
        let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header, vec!["NAME", "PHASE", "WORKERS", "CAPACITY", "AGE"], "{out}");
        let (ok, out) = kubectl(&config2, &["get", "mounts"]);
        assert!(ok, "{out}");
        let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header, vec!["NAME", "CLUSTER", "PATH", "UFS", "MOUNTED", "CACHED", "AGE"], "{out}");
        assert!(out.contains("/datasets") && out.contains("s3://datasets/tables"), "{out}");
        let (ok, out) = kubectl(&config2, &["get", "amnt", "datasets", "-o", "jsonpath={.spec.ufs}"]);
        assert!(ok && out.contains("s3://datasets/tables"), "{out}");
        // generation follows spec changes only; status is a subresource.
        let generation = |c: &Path| {
            kubectl(c, &["get", "mount", "datasets", "-o", "jsonpath={.metadata.generation}"]).1
        };
        assert_eq!(generation(&config2), "1");
        let (ok, out) = kubectl(
            &config2,
            &["patch", "mount", "datasets", "--type", "merge", "-p", r#"{"spec":{"readOnly":false}}"#],
        );
        assert!(ok, "{out}");
        assert_eq!(generation(&config2), "2");
        let (ok, out) = kubectl(
            &config2,
            &["patch", "mount", "datasets", "--subresource", "status", "--type", "merge", "-p", r#"{"status":{"mounted":true}}"#],
        );
        assert!(ok, "{out}");
        assert_eq!(generation(&config2), "2");
        let (_, mounted) = kubectl(&config2, &["get", "mount", "datasets", "-o", "jsonpath={.status.mounted}"]);
        assert_eq!(mounted, "true");
        // JSON patches (RFC 6902), all or nothing.
        let (ok, out) = kubectl(
            &config2,
            &["patch", "mount", "datasets", "--type", "json", "-p", r#"[{"op":"add","path":"/spec/options/region","value":"eu-west-1"}]"#],
        );
        assert!(ok, "{out}");
        let (_, region) = kubectl(&config2, &["get", "mount", "datasets", "-o", "jsonpath={.spec.options.region}"]);
        assert_eq!(region, "eu-west-1");
        let (ok, out) = kubectl(
            &config2,
            &["patch", "mount", "datasets", "--type", "json", "-p", r#"[{"op":"test","path":"/spec/readOnly","value":true}]"#],
        );
        assert!(!ok && out.contains("JSON patch failed"), "{out}");
        // A watch from an old version replays what happened since.
        let (_, list) = kubectl(&config2, &["get", "--raw", "/apis/alluxio.rs/v1alpha1/namespaces/default/mounts"]);
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
        let (ok, out) = kubectl(&config2, &["label", "mount", "datasets", "team=ml"]);
        assert!(ok, "{out}");
        let (ok, out) = kubectl(&config2, &["delete", "mount", "datasets"]);
        assert!(ok, "{out}");
        let url = format!(
            "/apis/alluxio.rs/v1alpha1/namespaces/default/mounts?watch=true&resourceVersion={rv}&timeoutSeconds=1"
        );
        let (ok, out) = kubectl(&config2, &["get", "--raw", &url]);
        assert!(ok, "{out}");
        let kinds: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split("\"type\":\"").nth(1))
            .map(|t| t.split('"').next().unwrap_or(""))
            .collect();
        assert_eq!(kinds, vec!["MODIFIED", "DELETED"], "{out}");
        let (ok, _) = kubectl(&config2, &["get", "mount", "datasets"]);
        assert!(!ok, "deleted");
        // The cluster and its objects go with `kubectl delete -f`.
        let (ok, out) = kubectl(&config2, &["delete", "-f", examples.to_str().unwrap(), "--ignore-not-found"]);
        assert!(ok, "{out}");
        let (_, out) = kubectl(&config2, &["get", "alluxioclusters", "-o", "name"]);
        assert!(out.trim().is_empty(), "{out}");
    })
    .await
    .unwrap();
}
