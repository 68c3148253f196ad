//! Reconciliation against the Kubernetes API: the AlluxioCluster
//! reconciler (`cluster`), the Mount reconciler (`mount`), how the master
//! of a cluster is found (`masters`), the size of its masters' group
//! (`membership`), key rotations (`key_rotation`), Events (`events`), backoff per
//! object (`backoff`), and the watch-driven controllers that run them
//! (`run`).
//!
//! Each reconcile is a pipeline with one error variant per stage:
//! dereference (names and references, once) -> validate and build (pure,
//! `build/`) -> apply -> observe -> status, with an Event for each thing
//! it did and each failure.

pub mod backoff;
pub mod cluster;
pub mod events;
pub mod key_rotation;
pub mod load;
pub mod masters;
pub mod membership;
pub mod mount;
pub mod run;

use crate::metrics::Metrics;
use backoff::Backoff;
use events::Events;
use masters::MasterClients;

/// What every reconcile needs: the API client, metrics, the masters'
/// clients, the Event recorder and the backoff per object.
pub struct Context {
    pub client: kube::Client,
    /// Server-side apply field manager, also the Events' reporter.
    pub field_manager: String,
    pub metrics: Metrics,
    pub masters: MasterClients,
    pub events: Events,
    pub backoff: Backoff,
}

impl Context {
    pub fn new(client: kube::Client, field_manager: &str, metrics: Metrics) -> Self {
        Context {
            events: Events::new(client.clone(), field_manager),
            client,
            field_manager: field_manager.to_string(),
            metrics,
            masters: MasterClients::default(),
            backoff: Backoff::default(),
        }
    }
}

/// An error a reconcile ends with, with a short reason for metrics,
/// conditions and Events.
pub trait ReconcileError: std::error::Error + Send + Sync + 'static {
    fn reason(&self) -> &'static str;
}

/// The error of a reconcile run under kube's finalizer helper: the
/// reconcile's own, or `finalizer_failed` for the helper's own patches.
pub fn unwrap_finalizer_error<E: ReconcileError>(
    e: kube::runtime::finalizer::Error<E>,
    finalizer_failed: impl FnOnce(String) -> E,
) -> E {
    use kube::runtime::finalizer::Error as F;
    match e {
        F::ApplyFailed(e) | F::CleanupFailed(e) => e,
        F::AddFinalizer(e) | F::RemoveFinalizer(e) => finalizer_failed(e.to_string()),
        other => finalizer_failed(other.to_string()),
    }
}

/// Backoff key of an object: kind, namespace and name.
pub fn object_key<K: kube::Resource<DynamicType = ()>>(o: &K) -> String {
    use kube::ResourceExt;
    format!(
        "{}/{}/{}",
        K::kind(&()),
        o.namespace().unwrap_or_default(),
        o.name_any()
    )
}
