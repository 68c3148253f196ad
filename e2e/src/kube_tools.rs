//! Running the real `kubectl` (against a test API server) and `helm`
//! (on the chart). `scripts/install-kube-tools.sh` installs both.

use std::path::Path;
use std::process::Command;

/// Whether kubectl is installed; `None` (skip) or a panic under CI when not.
pub fn require_kubectl() -> Option<()> {
    match Command::new("kubectl")
        .args(["version", "--client"])
        .output()
    {
        Ok(out) if out.status.success() => Some(()),
        _ => alluxio_testkit::missing_prerequisite("kubectl"),
    }
}

/// Runs `kubectl --kubeconfig config args...`: success and stdout+stderr.
pub fn kubectl(config: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(config)
        .args(args)
        .output()
        .expect("kubectl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// [`kubectl`] on a blocking thread, for async tests whose runtime also
/// serves the API server kubectl talks to.
pub async fn kubectl_async(config: &Path, args: &[&str]) -> (bool, String) {
    let config = config.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kubectl(&config, &args)
    })
    .await
    .expect("the kubectl thread")
}

/// Whether helm is installed; `None` (skip) or a panic under CI when not.
pub fn require_helm() -> Option<()> {
    match Command::new("helm").arg("version").output() {
        Ok(out) if out.status.success() => Some(()),
        _ => alluxio_testkit::missing_prerequisite("helm"),
    }
}

/// Runs `helm args...`: success and stdout+stderr.
pub fn helm(args: &[&str]) -> (bool, String) {
    let out = Command::new("helm").args(args).output().expect("helm runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The objects `helm template` renders from `chart` with `args`.
pub fn helm_template(chart: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["template", "test", chart.to_str().expect("a UTF-8 path")];
    all.extend_from_slice(args);
    let (ok, out) = helm(&all);
    assert!(ok, "helm template failed: {out}");
    serde_yaml::Deserializer::from_str(&out)
        .filter_map(|doc| serde::Deserialize::deserialize(doc).ok())
        .filter(|v: &serde_json::Value| v.is_object())
        .collect()
}

/// The repository's root directory.
pub fn repo_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ is inside the repository")
        .to_path_buf()
}

/// The repository's Helm chart.
pub fn chart_dir() -> std::path::PathBuf {
    repo_dir().join("charts/alluxio-rs")
}

/// `helm package` of the repository's chart into `dir`: the archive a
/// release ships (`alluxio-rs-<version>.tgz`).
pub fn package_chart(dir: &Path) -> std::path::PathBuf {
    let (ok, out) = helm(&[
        "package",
        chart_dir().to_str().expect("a UTF-8 path"),
        "--destination",
        dir.to_str().expect("a UTF-8 path"),
    ]);
    assert!(ok, "helm package failed: {out}");
    let archive = dir.join(format!("alluxio-rs-{}.tgz", env!("CARGO_PKG_VERSION")));
    assert!(
        archive.is_file(),
        "helm package wrote no {}: {out}",
        archive.display()
    );
    archive
}

/// `helm install` of the chart `archive` as release `test` in `default`
/// (the names [`CHART_OPERATOR_USER`] assumes) on the server of
/// `kubeconfig`, with `--set` values `sets`; helm's output.
pub fn install_chart(archive: &Path, kubeconfig: &Path, sets: &[&str]) -> String {
    let mut args = vec![
        "install",
        "test",
        archive.to_str().expect("a UTF-8 path"),
        "--kubeconfig",
        kubeconfig.to_str().expect("a UTF-8 path"),
        "--namespace",
        "default",
        // The test API server serves no OpenAPI document; rendered objects'
        // schemas are checked by `schema_check` instead.
        "--disable-openapi-validation",
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    let (ok, out) = helm(&args);
    assert!(ok, "helm install failed: {out}");
    out
}

/// A test API server with the repository's CRDs applied by `kubectl`, and
/// the kubeconfig for it, written into `dir`.
pub async fn api_server_with_crds(
    dir: &Path,
) -> (crate::apiserver::TestApiServer, std::path::PathBuf) {
    let server = crate::apiserver::TestApiServer::start()
        .await
        .expect("test API server");
    let config = dir.join("kubeconfig");
    std::fs::write(&config, server.kubeconfig()).expect("write kubeconfig");
    let crds = repo_dir().join("crds");
    let (ok, out) = kubectl_async(
        &config,
        &["apply", "--validate=false", "-f", crds.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{out}");
    (server, config)
}

/// The user of the chart's ServiceAccount when the chart is installed as
/// release `test` in namespace `default` (as `helm template test` does).
pub const CHART_OPERATOR_USER: &str = "system:serviceaccount:default:test-alluxio-rs";

/// Asserts that the RBAC the chart installs (release `test` in `default`)
/// allows every one of `requests` (skips without helm, except under CI).
pub fn assert_chart_allows(requests: &[crate::apiserver::audit::AuditEntry]) {
    use crate::apiserver::audit::{denied, Grant};
    if require_helm().is_none() {
        return;
    }
    assert!(!requests.is_empty(), "no requests were recorded");
    let grants = Grant::from_objects(&helm_template(&chart_dir(), &["--namespace", "default"]));
    let denied = denied(requests, &grants);
    assert!(
        denied.is_empty(),
        "the chart's RBAC does not allow: {denied:#?}"
    );
}
