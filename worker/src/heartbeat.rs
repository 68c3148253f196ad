//! The worker's conversation with the master: a persistent identity,
//! registration with everything cached, and heartbeats that report changes
//! and carry back commands (free blocks, register again) and the pinned
//! files.

use crate::block_store::BlockStore;
use alluxio_client::MasterClient;
use alluxio_proto::grpc::{
    BlockIdList, CommandType, RegisterWorkerRequest, WorkerAddress, WorkerHeartbeatRequest,
};
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

/// This worker's id, created once and kept in `data_dir/worker-id`, so a
/// restarted worker keeps its place and its cache.
pub fn load_or_create_id(data_dir: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("worker-id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(id) = text.trim().parse::<u64>() {
            if id != 0 {
                return Ok(id);
            }
        }
        tracing::warn!(file = %path.display(), "unreadable worker id; making a new one");
    }
    let id = loop {
        let candidate = rand::random::<u64>() >> 1;
        if candidate != 0 {
            break candidate;
        }
    };
    let tmp = data_dir.join("worker-id.tmp");
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

pub struct Heartbeat {
    pub master: MasterClient,
    pub persister: std::sync::Arc<crate::persist::Persister>,
    pub store: BlockStore,
    pub worker_id: u64,
    pub address: WorkerAddress,
    pub interval: Duration,
}

impl Heartbeat {
    async fn register(&self) -> alluxio_common::Result<()> {
        let store = self.store.clone();
        let (blocks, tiers) = tokio::task::spawn_blocking(move || {
            // Changes so far are covered by the full report.
            let _ = store.take_changes();
            (store.blocks_by_tier(), store.tier_usage())
        })
        .await
        .map_err(|e| alluxio_common::AlluxioError::Internal(e.to_string()))?;
        self.master
            .register_worker(RegisterWorkerRequest {
                worker_id: self.worker_id,
                address: Some(self.address.clone()),
                tiers,
                blocks_on_tiers: blocks
                    .into_iter()
                    .map(|(t, ids)| (t, BlockIdList { block_ids: ids }))
                    .collect(),
            })
            .await?;
        tracing::info!(worker_id = self.worker_id, "registered with the master");
        Ok(())
    }

    async fn beat(&self) -> alluxio_common::Result<bool> {
        let (added, removed) = self.store.take_changes();
        let request = WorkerHeartbeatRequest {
            worker_id: self.worker_id,
            tiers: self.store.tier_usage(),
            added_blocks: added.clone(),
            removed_block_ids: removed.clone(),
        };
        let response = match self.master.worker_heartbeat(request).await {
            Ok(r) => r,
            Err(e) => {
                self.store.restore_changes(added, removed);
                return Err(e);
            }
        };
        self.store
            .set_pinned_files(response.pinned_file_ids.into_iter().collect());
        self.persister.start(response.persist_files);
        let command = response.command.unwrap_or_default();
        match CommandType::try_from(command.command_type).unwrap_or(CommandType::Nothing) {
            CommandType::Nothing => Ok(true),
            CommandType::Register => Ok(false),
            CommandType::Free => {
                let store = self.store.clone();
                let ids = command.block_ids;
                tracing::debug!(blocks = ids.len(), "freeing blocks on the master's command");
                let _ = tokio::task::spawn_blocking(move || {
                    ids.iter().for_each(|id| store.remove(*id))
                })
                .await;
                Ok(true)
            }
        }
    }

    /// Registers, then heartbeats until shutdown; survives master restarts
    /// and outages by registering again.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut registered = false;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = ticker.tick() => {}
            }
            if *shutdown.borrow() {
                return;
            }
            if !registered {
                match self.register().await {
                    Ok(()) => registered = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot register with the master; retrying");
                        continue;
                    }
                }
            }
            match self.beat().await {
                Ok(still_known) => registered = still_known,
                Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying"),
            }
        }
    }
}
