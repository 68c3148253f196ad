//! The StorageClass through which pods get volumes of a cluster from the
//! CSI driver (`spec.csi.enabled`). StorageClasses are cluster-scoped, so
//! the cluster cannot own it; a finalizer on the cluster removes it.

use super::names::Names;
use crate::crd::cluster::AlluxioClusterSpec;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// The CSI driver's name.
pub const CSI_DRIVER: &str = "csi.alluxio.rs";

/// Held by clusters that have a StorageClass, until it is deleted.
pub const STORAGE_CLASS_FINALIZER: &str = "alluxio.rs/storage-class";

pub fn storage_class_name(names: &Names) -> String {
    format!("alluxio-{}-{}", names.namespace, names.cluster)
}

/// The cluster's master, and its Secret for the provisioner (CreateVolume,
/// DeleteVolume) and the kubelet (NodeStageVolume, and NodePublishVolume,
/// which the kubelet repeats with the CSIDriver's `requiresRepublish`):
/// the CSI plugin calls the master with tokens minted from its key, and a
/// publish brings a rotated key to the volume's FUSE daemon.
fn parameters(names: &Names, spec: &AlluxioClusterSpec) -> BTreeMap<String, String> {
    let secret = super::security::security_secret_name(names);
    let mut p = BTreeMap::from([(
        "masterAddress".to_string(),
        // The client Service, not every master: the address is part of
        // each volume's id (CSI ids are at most 128 bytes), and a follower
        // behind the Service names the leader, which clients then dial.
        format!("{}:{}", names.master_service_host(), spec.master.rpc_port),
    )]);
    for purpose in ["provisioner", "node-stage", "node-publish"] {
        p.insert(
            format!("csi.storage.k8s.io/{purpose}-secret-name"),
            secret.clone(),
        );
        p.insert(
            format!("csi.storage.k8s.io/{purpose}-secret-namespace"),
            names.namespace.clone(),
        );
    }
    p
}

pub fn storage_class(names: &Names, spec: &AlluxioClusterSpec) -> StorageClass {
    StorageClass {
        metadata: ObjectMeta {
            name: Some(storage_class_name(names)),
            labels: Some(names.labels("csi")),
            ..Default::default()
        },
        provisioner: CSI_DRIVER.into(),
        parameters: Some(parameters(names, spec)),
        reclaim_policy: Some("Delete".into()),
        volume_binding_mode: Some("Immediate".into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_class_names_the_clusters_master() {
        let names = Names::new("demo", "data");
        let spec: AlluxioClusterSpec = serde_yaml::from_str("{}").unwrap();
        let class = storage_class(&names, &spec);
        assert_eq!(class.metadata.name.as_deref(), Some("alluxio-data-demo"));
        assert_eq!(class.provisioner, "csi.alluxio.rs");
        let parameters = class.parameters.unwrap();
        assert_eq!(
            parameters["masterAddress"],
            format!(
                "demo-master.data.svc.cluster.local:{}",
                spec.master.rpc_port
            )
        );
        assert_eq!(
            parameters["csi.storage.k8s.io/node-stage-secret-name"],
            "demo-security"
        );
        assert_eq!(
            parameters["csi.storage.k8s.io/provisioner-secret-namespace"],
            "data"
        );
        assert_eq!(
            parameters["csi.storage.k8s.io/node-publish-secret-name"],
            "demo-security"
        );
    }
}
