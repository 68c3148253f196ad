//! Pure functions from a custom resource to the objects it stands for;
//! tested without an API server.

pub mod cluster_status;
pub mod config;
pub mod mount_plan;
pub mod names;
pub mod network_policy;
pub mod quantity;
pub mod storage_class;
pub mod workloads;
