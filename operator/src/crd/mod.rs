//! The custom resources, group `alluxio.rs`, version `v1alpha1`, defined as
//! Rust types; `crds/` holds the CustomResourceDefinitions generated from
//! them (`cargo run -p alluxio-operator -- crds --out crds`), and a test
//! fails when that directory is stale.

// kube's repeated `printcolumn(...)` arguments look like duplicated
// attributes to clippy.
#[allow(clippy::duplicated_attributes)]
pub mod cluster;
#[allow(clippy::duplicated_attributes)]
pub mod load;
#[allow(clippy::duplicated_attributes)]
pub mod mount;

pub use cluster::{AlluxioCluster, AlluxioClusterSpec, AlluxioClusterStatus, ClusterPhase};
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
pub use load::{Load, LoadPolicy, LoadSpec, LoadStatus};
pub use mount::{Mount, MountSpec, MountStatus};

use kube::CustomResourceExt;

/// Each CRD as (file name, YAML), in a stable order.
pub fn crd_files() -> Vec<(&'static str, String)> {
    let yaml = |crd| serde_yaml::to_string(&crd).expect("a CRD serialises");
    vec![
        (
            "alluxioclusters.alluxio.rs.yaml",
            yaml(AlluxioCluster::crd()),
        ),
        ("loads.alluxio.rs.yaml", yaml(Load::crd())),
        ("mounts.alluxio.rs.yaml", yaml(Mount::crd())),
    ]
}
