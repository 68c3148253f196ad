//! Reconciliation against the Kubernetes API. Built so far: the apply step
//! of an AlluxioCluster (`cluster`). The watch-driven controller, status
//! updates from the master and the Mount reconciler come next.

pub mod cluster;

/// What every reconcile needs.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    /// Server-side apply field manager.
    pub field_manager: String,
}
