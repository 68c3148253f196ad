//! The simulated Kubernetes for end-to-end tests: a test API server
//! (`apiserver`), a process kubelet (`kubelet`), the external-provisioner's
//! part (`provisioner`), the real `kubectl` and `helm` (`kube_tools`), a
//! CSI client channel (`csi_client`), the project's container image built
//! for pods (`project_image`) and a schema check of rendered objects
//! (`schema_check`). Test support that is not Kubernetes
//! (S3 servers, the in-process cluster, process helpers) is in
//! `alluxio-testkit`.

pub mod apiserver;
pub mod csi_client;
pub mod kube_tools;
pub mod kubelet;
pub mod project_image;
pub mod provisioner;
pub mod schema_check;
