//! The resources the test API server serves: the built-in kinds the
//! operator, the process kubelet and kubectl use, and each version of a
//! registered CustomResourceDefinition.

use super::store::Resource;
use serde_json::Value;

fn r(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    status: bool,
) -> Resource {
    Resource {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        kind: kind.into(),
        namespaced,
        status_subresource: status,
        short_names: Vec::new(),
    }
}

pub fn builtin_resources() -> Vec<Resource> {
    let short = |mut r: Resource, names: &[&str]| {
        r.short_names = names.iter().map(|n| n.to_string()).collect();
        r
    };
    vec![
        short(r("", "v1", "namespaces", "Namespace", false, true), &["ns"]),
        short(r("", "v1", "configmaps", "ConfigMap", true, false), &["cm"]),
        r("", "v1", "secrets", "Secret", true, false),
        short(r("", "v1", "services", "Service", true, true), &["svc"]),
        short(r("", "v1", "pods", "Pod", true, true), &["po"]),
        short(
            r(
                "",
                "v1",
                "persistentvolumeclaims",
                "PersistentVolumeClaim",
                true,
                true,
            ),
            &["pvc"],
        ),
        short(
            r(
                "",
                "v1",
                "persistentvolumes",
                "PersistentVolume",
                false,
                true,
            ),
            &["pv"],
        ),
        short(r("", "v1", "events", "Event", true, false), &["ev"]),
        // The newer Events API, which kube's event Recorder writes. A real
        // API server shows one store through both; this one keeps them
        // apart (see the README).
        r("events.k8s.io", "v1", "events", "Event", true, false),
        short(
            r("apps", "v1", "statefulsets", "StatefulSet", true, true),
            &["sts"],
        ),
        short(
            r("apps", "v1", "daemonsets", "DaemonSet", true, true),
            &["ds"],
        ),
        short(
            r("apps", "v1", "deployments", "Deployment", true, true),
            &["deploy"],
        ),
        r("coordination.k8s.io", "v1", "leases", "Lease", true, false),
        short(
            r(
                "policy",
                "v1",
                "poddisruptionbudgets",
                "PodDisruptionBudget",
                true,
                true,
            ),
            &["pdb"],
        ),
        // What the chart installs. Stored and served; RBAC is not enforced
        // here (the audit log is checked against the chart's rules instead,
        // see `kube_tools::assert_chart_allows`).
        short(
            r("", "v1", "serviceaccounts", "ServiceAccount", true, false),
            &["sa"],
        ),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
            false,
        ),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            false,
        ),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            true,
            false,
        ),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
            false,
        ),
        // Stored and served; nothing here enforces it (see the README).
        short(
            r(
                "networking.k8s.io",
                "v1",
                "networkpolicies",
                "NetworkPolicy",
                true,
                false,
            ),
            &["netpol"],
        ),
        short(
            r(
                "storage.k8s.io",
                "v1",
                "storageclasses",
                "StorageClass",
                false,
                false,
            ),
            &["sc"],
        ),
        r(
            "storage.k8s.io",
            "v1",
            "csidrivers",
            "CSIDriver",
            false,
            false,
        ),
        short(
            r(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
                true,
            ),
            &["crd", "crds"],
        ),
    ]
}

/// The served versions of a CustomResourceDefinition.
pub fn resource_from_crd(crd: &Value) -> Vec<Resource> {
    let spec = &crd["spec"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let short_names: Vec<String> = spec["names"]["shortNames"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    spec["versions"]
        .as_array()
        .map(|versions| {
            versions
                .iter()
                .filter(|v| v["served"].as_bool().unwrap_or(true))
                .map(|v| Resource {
                    group: text(&spec["group"]),
                    version: text(&v["name"]),
                    plural: text(&spec["names"]["plural"]),
                    kind: text(&spec["names"]["kind"]),
                    namespaced: spec["scope"] == "Namespaced",
                    status_subresource: v.pointer("/subresources/status").is_some(),
                    short_names: short_names.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}
