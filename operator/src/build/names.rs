//! Names of the objects the operator creates for a cluster, and the
//! labels that select them. One place, so builders and reconcilers agree.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub cluster: String,
    pub namespace: String,
}

impl Names {
    pub fn new(cluster: &str, namespace: &str) -> Self {
        Names {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
        }
    }

    /// The name every certificate of the cluster carries:
    /// `spec.tls.serverName`, by default `<cluster>.<namespace>.alluxio`.
    pub fn tls_server_name(&self, tls: &crate::crd::cluster::TlsSpec) -> String {
        tls.server_name
            .clone()
            .unwrap_or_else(|| format!("{}.{}.alluxio", self.cluster, self.namespace))
    }

    pub fn config_map(&self) -> String {
        format!("{}-config", self.cluster)
    }

    /// The client Service of the masters.
    pub fn master_service(&self) -> String {
        format!("{}-master", self.cluster)
    }

    /// The headless Service that names each master pod.
    pub fn master_headless_service(&self) -> String {
        format!("{}-master-headless", self.cluster)
    }

    pub fn master_statefulset(&self) -> String {
        format!("{}-master", self.cluster)
    }

    pub fn worker_daemonset(&self) -> String {
        format!("{}-worker", self.cluster)
    }

    /// DNS name of master pod `ordinal`, through the headless Service.
    pub fn master_pod_host(&self, ordinal: i32) -> String {
        format!(
            "{}-{ordinal}.{}.{}.svc.cluster.local",
            self.master_statefulset(),
            self.master_headless_service(),
            self.namespace
        )
    }

    pub fn master_service_host(&self) -> String {
        format!(
            "{}.{}.svc.cluster.local",
            self.master_service(),
            self.namespace
        )
    }

    /// Labels of every object of the cluster with `component` (master,
    /// worker, config).
    pub fn labels(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "alluxio".to_string()),
            (
                "app.kubernetes.io/instance".to_string(),
                self.cluster.clone(),
            ),
            (
                "app.kubernetes.io/component".to_string(),
                component.to_string(),
            ),
            (
                "app.kubernetes.io/managed-by".to_string(),
                "alluxio-operator".to_string(),
            ),
        ])
    }
}
