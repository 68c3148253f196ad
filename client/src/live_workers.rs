//! The live-worker list, cached: a client asks the master for it at most
//! once per `user.worker_list_refresh` (and one caller at a time), and
//! again at once after a worker failed it, instead of before every block
//! it reads or writes. An empty list is never kept: a client that started
//! before the workers registered sees them on its next read.

use crate::MasterClient;
use alluxio_proto::grpc::WorkerInfo;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct LiveWorkers {
    master: MasterClient,
    refresh: Duration,
    cached: Mutex<Option<(Instant, Arc<Vec<WorkerInfo>>)>>,
    /// Held while the master is asked, so concurrent readers wait for one
    /// answer instead of each asking.
    fetching: tokio::sync::Mutex<()>,
}

impl LiveWorkers {
    pub fn new(master: MasterClient, refresh: Duration) -> Self {
        LiveWorkers {
            master,
            refresh,
            cached: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The workers the master knows, from the cache while it is fresh; the
    /// last list (or none) when the master cannot be asked.
    pub async fn get(&self) -> Arc<Vec<WorkerInfo>> {
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let _one_at_a_time = self.fetching.lock().await;
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        match self.master.worker_infos().await {
            Ok(workers) => {
                let workers = Arc::new(workers);
                if !workers.is_empty() {
                    *self.lock() = Some((Instant::now(), workers.clone()));
                }
                workers
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot list workers");
                self.lock()
                    .as_ref()
                    .map(|(_, w)| w.clone())
                    .unwrap_or_default()
            }
        }
    }

    /// Forgets the list, after a worker on it failed a request (it may be
    /// gone, or others may have joined).
    pub fn invalidate(&self) {
        *self.lock() = None;
    }

    fn fresh(&self) -> Option<Arc<Vec<WorkerInfo>>> {
        self.lock()
            .as_ref()
            .filter(|(fetched, _)| fetched.elapsed() < self.refresh)
            .map(|(_, w)| w.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<Vec<WorkerInfo>>)>> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}
