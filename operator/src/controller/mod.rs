//! Reconciliation against the Kubernetes API: the AlluxioCluster
//! reconciler (`cluster`), the Mount reconciler with its finalizer
//! (`mount`), how the master of a cluster is found (`masters`), and the
//! watch-driven controllers that run them (`run`).

pub mod cluster;
pub mod masters;
pub mod mount;
pub mod run;

use crate::metrics::Metrics;
use masters::MasterClients;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// What every reconcile needs.
pub struct Context {
    pub client: kube::Client,
    /// Server-side apply field manager.
    pub field_manager: String,
    pub metrics: Metrics,
    pub masters: MasterClients,
    /// Consecutive failures per object, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
}

/// First retry after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl Context {
    pub fn new(client: kube::Client, field_manager: &str, metrics: Metrics) -> Self {
        Context {
            client,
            field_manager: field_manager.to_string(),
            metrics,
            masters: MasterClients::default(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records one more failure of `key` and returns how long to wait
    /// before the next attempt.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        let delay = FIRST_BACKOFF
            .saturating_mul(1 << (*n).min(16))
            .min(MAX_BACKOFF);
        *n += 1;
        delay
    }

    /// Forgets the failures of `key` after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}
