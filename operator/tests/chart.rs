//! The Helm chart: lints clean, renders what each setting says, and
//! carries exactly the CRDs generated from the Rust types. (That its RBAC
//! allows every request the operator makes is checked where the operator
//! runs: `controller.rs` and `process.rs`.)

use alluxio_e2e::kube_tools::{helm, helm_template, require_helm};
use serde_json::Value;
use std::path::PathBuf;

fn chart() -> PathBuf {
    alluxio_e2e::kube_tools::chart_dir()
}

fn kinds(objects: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or("").to_string())
        .collect();
    k.sort();
    k
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

fn args(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_chart_lints_and_renders_its_settings() {
    if require_helm().is_none() {
        return;
    }
    let (ok, out) = helm(&["lint", "--strict", chart().to_str().unwrap()]);
    assert!(ok, "{out}");

    let default = helm_template(&chart(), &["--namespace", "ops"]);
    assert_eq!(
        kinds(&default),
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
    let deployment = find(&default, "Deployment");
    assert_eq!(
        args(deployment),
        [
            "run",
            "--metrics-address=0.0.0.0:8080",
            "--lease-name=test-alluxio-rs"
        ]
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "test-alluxio-rs");
    assert_eq!(
        pod["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/readyz"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    // The leader election Role lives in the release's namespace.
    assert_eq!(find(&default, "Role")["metadata"]["namespace"], "ops");

    // One watched namespace: a Role there instead of a ClusterRole; and
    // the ServiceMonitor for the Prometheus operator when asked.
    let scoped = helm_template(
        &chart(),
        &[
            "--namespace",
            "ops",
            "--set",
            "watchNamespace=data",
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "replicas=2",
        ],
    );
    // Only StorageClasses (cluster-scoped) keep a ClusterRole.
    let cluster_roles: Vec<&Value> = scoped
        .iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .collect();
    assert_eq!(cluster_roles.len(), 1);
    assert_eq!(
        cluster_roles[0]["rules"][0]["resources"][0],
        "storageclasses"
    );
    let roles: Vec<&Value> = scoped.iter().filter(|o| o["kind"] == "Role").collect();
    let namespaces: Vec<&str> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["data", "ops"]);
    let deployment = find(&scoped, "Deployment");
    assert!(args(deployment).contains(&"--namespace=data".to_string()));
    assert_eq!(deployment["spec"]["replicas"], 2);
    let monitor = find(&scoped, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");

    // The CSI driver: CSIDriver, node plugin (privileged, Bidirectional
    // propagation, registrar), controller with external-provisioner, and
    // a StorageClass per listed cluster.
    let csi = helm_template(
        &chart(),
        &[
            "--set",
            "csi.enabled=true",
            "--set",
            "csi.storageClasses[0].name=alluxio-demo",
            "--set",
            "csi.storageClasses[0].masterAddress=demo-master.default.svc.cluster.local:19998",
        ],
    );
    assert_eq!(
        find(&csi, "CSIDriver")["metadata"]["name"],
        "csi.alluxio.rs"
    );
    assert_eq!(find(&csi, "CSIDriver")["spec"]["attachRequired"], false);
    let node = csi
        .iter()
        .find(|o| o["kind"] == "DaemonSet")
        .expect("the node plugin");
    let containers = node["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers[0]["name"], "node-driver-registrar");
    let plugin = &containers[1];
    assert_eq!(plugin["securityContext"]["privileged"], true);
    let kubelet_mount = plugin["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "kubelet-dir")
        .unwrap();
    assert_eq!(kubelet_mount["mountPropagation"], "Bidirectional");
    let controller = csi
        .iter()
        .find(|o| {
            o["kind"] == "Deployment" && o["metadata"]["name"] == "test-alluxio-rs-csi-controller"
        })
        .expect("the CSI controller");
    let sidecar = &controller["spec"]["template"]["spec"]["containers"][0];
    assert!(sidecar["image"]
        .as_str()
        .unwrap()
        .contains("csi-provisioner"));
    let class = find(&csi, "StorageClass");
    assert_eq!(class["provisioner"], "csi.alluxio.rs");
    assert_eq!(
        class["parameters"]["masterAddress"],
        "demo-master.default.svc.cluster.local:19998"
    );
    assert!(!kinds(&default).contains(&"CSIDriver".to_string()));

    // The CRDs install with the chart.
    let with_crds = helm_template(&chart(), &["--include-crds"]);
    let crds: Vec<&str> = with_crds
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        crds,
        [
            "alluxioclusters.alluxio.rs",
            "loads.alluxio.rs",
            "mounts.alluxio.rs"
        ]
    );
}

/// Every way of rendering the chart the tests use.
fn renderings() -> Vec<Vec<Value>> {
    [
        &["--include-crds"][..],
        &["--set", "watchNamespace=data", "--set", "replicas=2"],
        &[
            "--set",
            "csi.enabled=true",
            "--set",
            "csi.storageClasses[0].name=alluxio-demo",
            "--set",
            "csi.storageClasses[0].masterAddress=demo-master.default.svc.cluster.local:19998",
        ],
    ]
    .iter()
    .map(|args| helm_template(&chart(), args))
    .collect()
}

#[test]
fn images_and_versions_follow_the_crate_version() {
    if require_helm().is_none() {
        return;
    }
    let chart_yaml: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap())
            .unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(chart_yaml["version"], version);
    assert_eq!(chart_yaml["appVersion"], version);
    let image = format!("ghcr.io/alluxio-rs/alluxio:{version}");
    assert_eq!(alluxio_operator::crd::cluster::DEFAULT_IMAGE, image);
    let example = std::fs::read_to_string(
        alluxio_e2e::kube_tools::repo_dir().join("crds/examples/alluxiocluster.yaml"),
    )
    .unwrap();
    assert!(example.contains(&format!("image: {image}")), "{example}");
    // The operator and the CSI plugin run the project's one image; only
    // the CSI sidecars come from elsewhere.
    for objects in renderings() {
        for o in &objects {
            let containers = o["spec"]["template"]["spec"]["containers"].as_array();
            for c in containers.into_iter().flatten() {
                let name = c["image"].as_str().unwrap();
                if !name.starts_with("registry.k8s.io/sig-storage/") {
                    assert_eq!(name, image, "{}", o["metadata"]["name"]);
                    assert!(c["command"].is_array(), "the image's entrypoint is alluxio");
                }
            }
        }
    }
}

#[test]
fn every_rendered_object_fits_its_kubernetes_schema() {
    if require_helm().is_none() {
        return;
    }
    for objects in renderings() {
        for o in &objects {
            let errors = alluxio_e2e::schema_check::schema_errors(o);
            assert!(
                errors.is_empty(),
                "{} {}: {errors:#?}",
                o["kind"],
                o["metadata"]["name"]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_packaged_chart_applies_and_installs() {
    if require_helm().is_none() || alluxio_e2e::kube_tools::require_kubectl().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = alluxio_e2e::kube_tools::package_chart(dir.path());
    let archive = archive.to_str().unwrap();

    // A bare API server: the chart brings its CRDs.
    let server = alluxio_e2e::apiserver::TestApiServer::start()
        .await
        .unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, server.kubeconfig()).unwrap();
    let kubectl = |args: &[&str]| {
        let (ok, out) = alluxio_e2e::kube_tools::kubectl(&config, args);
        assert!(ok, "kubectl {args:?}: {out}");
        out
    };
    // What the archive renders passes kubectl's client-side dry run.
    let (ok, rendered) = helm(&["template", "test", archive, "--set", "csi.enabled=true"]);
    assert!(ok, "{rendered}");
    let manifest = dir.path().join("rendered.yaml");
    std::fs::write(&manifest, &rendered).unwrap();
    let out = kubectl(&[
        "apply",
        "--dry-run=client",
        "--validate=false",
        "-f",
        manifest.to_str().unwrap(),
    ]);
    assert!(
        out.contains("deployment.apps/test-alluxio-rs created (dry run)"),
        "{out}"
    );

    // helm install from the archive, as a user installs a released chart
    // (the release is stored in a Secret, its objects created).
    let out = alluxio_e2e::kube_tools::install_chart(
        std::path::Path::new(archive),
        &config,
        &["csi.enabled=true"],
    );
    assert!(out.contains("STATUS: deployed"), "{out}");
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/alluxioclusters.alluxio.rs",
        "crd/loads.alluxio.rs",
        "crd/mounts.alluxio.rs",
        "--timeout=30s",
    ]);
    assert_eq!(
        kubectl(&["get", "crd", "-o", "name"])
            .lines()
            .collect::<Vec<_>>(),
        [
            "customresourcedefinition.apiextensions.k8s.io/alluxioclusters.alluxio.rs",
            "customresourcedefinition.apiextensions.k8s.io/loads.alluxio.rs",
            "customresourcedefinition.apiextensions.k8s.io/mounts.alluxio.rs"
        ]
    );
    let out = kubectl(&[
        "get",
        "deployment/test-alluxio-rs",
        "daemonset/test-alluxio-rs-csi-node",
        "csidriver/csi.alluxio.rs",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {end}",
    ]);
    assert_eq!(out.split_whitespace().count(), 3, "{out}");
    let config = config.to_str().unwrap();
    let (ok, out) = helm(&["list", "--kubeconfig", config, "--namespace", "default"]);
    assert!(
        ok && out.contains(&format!("alluxio-rs-{}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    let (ok, out) = helm(&[
        "uninstall",
        "test",
        "--kubeconfig",
        config,
        "--namespace",
        "default",
    ]);
    assert!(ok, "{out}");
}
