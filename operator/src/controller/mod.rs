//! Reconciliation against the Kubernetes API. Built so far: the apply step
//! of an AlluxioCluster (`cluster`) and the Mount reconciler with its
//! finalizer (`mount`). The watch-driven controllers that call them, and
//! the cluster status from the master, come next.

pub mod cluster;
pub mod mount;

/// What every reconcile needs.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    /// Server-side apply field manager.
    pub field_manager: String,
}
