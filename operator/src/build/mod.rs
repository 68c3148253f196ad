//! Pure functions from a custom resource to the objects it stands for;
//! tested without an API server.

pub mod cluster_status;
pub mod config;
pub mod key_rotation;
pub mod load_plan;
pub mod membership;
pub mod mount_plan;
pub mod names;
pub mod network_policy;
pub mod quantity;
pub mod schedule;
pub mod security;
pub mod storage_class;
pub mod workloads;

/// The owner reference the builders' unit tests put on what they build.
#[cfg(test)]
pub(crate) fn test_owner() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: "alluxio.rs/v1alpha1".into(),
        kind: "AlluxioCluster".into(),
        name: "demo".into(),
        uid: "1234".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}
